"""API tokens at run time: authenticate a caller, issue a token, bootstrap the admin token."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from service.runtime import auth
from service.runtime.auth import Principal, Role
from service.runtime.live import LiveState
from service.store.eventlog import AppendResult

log = structlog.get_logger("promptd.tokens")
Record = Callable[[str, dict[str, Any]], AppendResult]


class TokenBook:
    """Checks bearer tokens against the live token records and appends new ones."""

    def __init__(self, live: LiveState, record: Record) -> None:
        self._live = live
        self._record = record

    def authenticate(self, token: str) -> Principal | None:
        """Return the caller behind a bearer token, or None."""
        return auth.verify(token, self._live.tokens)

    def issue(self, role: Role, name: str, actor: str) -> tuple[str, str]:
        """Append ``token.issued`` (its hash only); return (token_id, token), never logged."""
        token_id, token = auth.new_token(role)
        self._record("token.issued", {"token_id": token_id, "role": role, "name": name,
                                      "token_hash": auth.hash_token(token), "actor": actor})
        return token_id, token

    def has_admin(self) -> bool:
        """Return whether any admin token is still active."""
        return any(t.role == "admin" and not t.revoked for t in self._live.tokens.values())

    def ensure_admin(self, path: Path, actor: str) -> Path | None:
        """Issue a bootstrap admin token into ``path`` (mode 0600) if none is active.

        Returns the path written, or None when an admin token already existed.
        """
        if self.has_admin():
            return None
        _, token = self.issue("admin", "bootstrap", actor)
        write_secret(path, token)
        log.warning("admin_token_created", path=str(path.resolve()),
                    hint="read it from this file; it is not logged anywhere")
        return path


def write_secret(path: Path, secret: str) -> None:
    """Write ``secret`` to ``path``, readable by its owner only (whatever the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    os.chmod(path, 0o600)
