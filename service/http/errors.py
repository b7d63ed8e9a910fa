"""One error shape for every 4xx/5xx: ``{"error": {"code", "message", "details"}}``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.store.eventlog import EventLogError
from service.store.writer import WriterBusy, WriterStopped

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

    field: str
    message: str


class ErrorInfo(BaseModel):
    """A machine-readable code, a sentence for people, and the fields at fault."""

    code: str
    message: str
    details: list[ErrorDetail]


class ErrorResponse(BaseModel):
    """The body of every 4xx and 5xx answer."""

    error: ErrorInfo


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


def _api_error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(error_body(exc.code, exc.message, exc.details), exc.status,
                        headers=exc.headers)


async def caller_refusal(request: Request) -> JSONResponse | None:
    """Return the 401/403 the route's token check gives this caller, or None if it passes.

    FastAPI parses the body before it runs dependencies, so without this a body that is not
    JSON was answered 422/400 (and counted as a rejected event) for a caller with no token.
    """
    from service.http.deps import require_admin, require_agent  # deps imports this module

    dependant = getattr(request.scope.get("route"), "dependant", None)
    for dependency in getattr(dependant, "dependencies", ()):
        if dependency.call in (require_agent, require_admin):
            try:
                await dependency.call(request)
            except ApiError as exc:
                return _api_error_response(exc)
    return None


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the same shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _api_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        refused = await caller_refusal(request)
        if refused is not None:
            return refused
        count_rejected(request, getattr(exc, "body", None))
        details = validation_details(exc.errors())
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
        return JSONResponse(error_body("validation_error", f"invalid request: {summary}",
                                       details), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        refused = await caller_refusal(request) if exc.status_code == 400 else None
        if refused is not None:  # 400: a body that could not be read, before the token check
            return refused
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized",
                403: "forbidden"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(WriterBusy)
    async def _busy(_: Request, exc: WriterBusy) -> JSONResponse:
        return JSONResponse(error_body("busy", "promptd is overloaded; retry shortly"), 503,
                            headers={"Retry-After": "1"})

    @app.exception_handler(WriterStopped)
    async def _stopping(_: Request, exc: WriterStopped) -> JSONResponse:
        return JSONResponse(error_body("shutting_down", str(exc)), 503,
                            headers={"Retry-After": "2"})

    @app.exception_handler(EventLogError)
    async def _log_down(_: Request, exc: EventLogError) -> JSONResponse:
        return JSONResponse(error_body("log_unavailable", str(exc)), 503,
                            headers={"Retry-After": "2"})
