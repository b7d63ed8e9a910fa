"""The admin client: a thin httpx client of the admin API that turns errors into one line.

The CLI and the simulation use it; it needs nothing of the server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8077"


class AdminError(Exception):
    """An admin call failed; the message is the one line a person sees."""


def default_token(token_file: str | os.PathLike[str] = "var/admin.token") -> str | None:
    """Return PROMPTD_TOKEN, else the bootstrap admin token file's content, else None."""
    token = os.environ.get("PROMPTD_TOKEN")
    if token:
        return token.strip()
    path = Path(os.environ.get("PROMPTD_TOKEN_FILE", token_file))
    if path.is_file():
        return path.read_text().strip() or None
    return None


class AdminClient:
    """Calls the daemon's HTTP API as an admin."""

    def __init__(self, url: str | None = None, token: str | None = None,
                 *, transport: httpx.BaseTransport | None = None, timeout: float = 30.0) -> None:
        self.url = (url or os.environ.get("PROMPTD_URL") or DEFAULT_URL).rstrip("/")
        token = token or default_token()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout,
                                  transport=transport)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and return the decoded JSON; raise AdminError with the reason."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise AdminError(f"cannot reach promptd at {self.url}: {exc}") from exc
        if response.status_code >= 400:
            raise AdminError(f"{response.status_code}: {_reason(response)}")
        if not response.content:
            return None
        return response.json()

    def get(self, path: str, **kwargs: Any) -> Any:
        """GET ``path``; see ``request``."""
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        """POST JSON to ``path``; see ``request``."""
        return self.request("POST", path, json=json, **kwargs)


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", error))
    return str(body)[:200]
