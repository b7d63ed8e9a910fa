"""The exception handlers that give every error the same shape, and refuse callers first."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from service.commands import CommandRefused
from service.http.deps import require_admin, require_agent
from service.http.errors import ApiError, count_rejected, error_body, validation_details
from service.store.eventlog import EventLogError
from service.store.writer import WriterBusy, WriterStopped


def _api_error_response(exc: ApiError) -> JSONResponse:
    return JSONResponse(error_body(exc.code, exc.message, exc.details), exc.status,
                        headers=exc.headers)


async def caller_refusal(request: Request) -> JSONResponse | None:
    """Return the 401/403 the route's token check gives this caller, or None if it passes.

    FastAPI parses the body before it runs dependencies, so without this a body that is not
    JSON was answered 422/400 (and counted as a rejected event) for a caller with no token.
    """
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

    @app.exception_handler(CommandRefused)
    async def _refused(_: Request, exc: CommandRefused) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, exc.details), exc.status)

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
