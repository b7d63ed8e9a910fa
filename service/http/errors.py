"""One error shape for every 4xx/5xx: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from pydantic import BaseModel, Field

_UNION_TAGS = {"execution", "correction"}


class ApiError(Exception):
    """An error the API answers with its own status, code and message."""

    def __init__(self, status: int, code: str, message: str,
                 details: Sequence[dict[str, Any]] = (), headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = list(details)
        self.headers = headers


def field_path(loc: Sequence[Any]) -> str:
    """Return a readable field path like ``events[3].latency_ms`` from a pydantic loc."""
    parts = [p for p in loc if p not in ("body", "query", "path")]
    out = ""
    for i, part in enumerate(parts):
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in _UNION_TAGS and i > 0 and isinstance(parts[i - 1], int):
            continue  # the discriminator tag pydantic adds to the location
        else:
            out += f".{part}" if out else str(part)
    return out or "body"


def refuse_nul(**params: str | Sequence[str] | None) -> None:
    """Raise a 422 naming the first query parameter that holds a NUL character.

    PostgreSQL text cannot hold NUL: a filter with one failed the query with a 500.
    """
    for name, value in params.items():
        values = [value] if isinstance(value, str) else value or ()
        if any("\x00" in v for v in values):
            message = "must not contain NUL (\\x00) characters"
            raise ApiError(422, "validation_error", f"invalid request: {name}: {message}",
                           [{"field": name, "message": message}])


def error_body(code: str, message: str, details: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """Return the JSON body of an error response."""
    return {"error": {"code": code, "message": message, "details": list(details)}}


class ErrorDetail(BaseModel):
    """One offending field and what is wrong with it."""

    field: str = Field(description="the offending field, e.g. events[3].latency_ms")
    message: str = Field(description="what is wrong with it")


class ErrorInfo(BaseModel):
    """A machine-readable code, a sentence for people, and the fields at fault."""

    code: str = Field(description="machine-readable, e.g. validation_error, not_found")
    message: str = Field(description="one sentence for people")
    details: list[ErrorDetail] = Field(description="the fields at fault (may be empty)")


class ErrorResponse(BaseModel):
    """The body of every 4xx and 5xx answer."""

    error: ErrorInfo = Field(description="what went wrong")


_ERROR_MEANINGS = {
    400: "The body could not be read as JSON text (e.g. it is not UTF-8)",
    401: "Missing, unknown or revoked bearer token",
    403: "The route needs an admin token",
    404: "Unknown prompt, version, label, deployment, token or job",
    409: "The request conflicts with the current state",
    413: "Body over max_body_bytes, or batch over max_batch_events",
    422: "Invalid input; details name each offending field",
    500: "The job failed; see the daemon log",
    503: "Overloaded, shutting down or database unavailable; retry after Retry-After",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Return OpenAPI ``responses=`` entries that document ``codes`` with the error shape."""
    return {code: {"model": ErrorResponse, "description": _ERROR_MEANINGS[code]}
            for code in codes}


def validation_details(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Return ``[{"field", "message"}]`` from pydantic error dicts."""
    return [{"field": field_path(e.get("loc", ())), "message": e.get("msg", "invalid")}
            for e in errors]


_INGEST_TYPES = {"/v1/executions": "execution", "/v1/corrections": "correction"}


def count_rejected(request: Request, body: Any) -> None:
    """Count the events of a rejected ingest request by type (bounded label values)."""
    path = request.url.path
    if path == "/v1/events":
        raw = body.get("events") if isinstance(body, dict) else None
        items = raw if isinstance(raw, list) else [None]
        types = [e.get("type") if isinstance(e, dict) else None for e in items]
    elif path in _INGEST_TYPES:
        types = [_INGEST_TYPES[path]]
    else:
        return
    counter = request.app.state.daemon.metrics.events_ingested
    for t in types:
        counter.labels(t if t in _UNION_TAGS else "invalid", "rejected").inc()
