"""The FastAPI application: routes, error shape, body limit and request logging."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import __version__
from .api import admin, events, health, patterns, prompts, rollout
from .api.errors import error_body, install_error_handlers
from .daemon import Daemon
from .ids import uuid7

log = structlog.get_logger("promptd.http")


_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})


class _BodyTooLarge(Exception):
    pass


class RequestGuard:
    """Pure-ASGI middleware: request id, body size limit, one log line and metrics per request.

    Pure ASGI rather than ``BaseHTTPMiddleware`` because it sits on every ingest and resolve
    call and must cost microseconds.
    """

    def __init__(self, app: ASGIApp, daemon: Daemon) -> None:
        self.app = app
        self.daemon = daemon
        self.max_body = daemon.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid7()
        status = {"code": 500}
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await self._send_413(send, request_id)
            self._done(scope, 413, started, request_id)
            return
        received = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def tagged_send(message: Message) -> None:
            if too_large:
                # The framework may turn our exception into its own 4xx; the answer is 413.
                if message["type"] == "http.response.start":
                    status["code"] = 413
                    await self._send_413(send, request_id)
                return
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        try:
            await self.app(scope, limited_receive, tagged_send)
        except _BodyTooLarge:
            if status["code"] != 413:
                await self._send_413(send, request_id)
                status["code"] = 413
        finally:
            self._done(scope, status["code"], started, request_id)

    async def _send_413(self, send: Send, request_id: str) -> None:
        import json

        body = json.dumps(error_body(
            "body_too_large", f"request body exceeds {self.max_body} bytes")).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode("latin-1"))]})
        await send({"type": "http.response.body", "body": body})

    def _done(self, scope: Scope, code: int, started: float, request_id: str) -> None:
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope.get("method", "")
        method = method if method in _METHODS else "other"
        self.daemon.metrics.http_requests.labels(template, method, str(code)).inc()
        if template in ("/metrics", "/healthz", "/readyz"):
            return
        # Path and query only: never headers (tokens) or bodies (prompts) at info level.
        log.info("request", request_id=request_id, method=method, route=template,
                 status=code, duration_ms=round((time.perf_counter() - started) * 1000, 3))


def create_app(daemon: Daemon, *, manage_lifecycle: bool = True) -> FastAPI:
    """Return the ASGI app serving ``daemon``; it starts and stops the daemon with the app."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            daemon.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                daemon.stop()

    app = FastAPI(
        title="promptd",
        version=__version__,
        description="Event-sourced daemon that keeps improving the prompts of LLM agents.",
        lifespan=lifespan,
    )
    app.state.daemon = daemon
    install_error_handlers(app)
    # Routes under /v1/prompts/{name}/... come before the prompts router's catch-all
    # GET /v1/prompts/{name}, since names may contain slashes.
    for module in (health, events, patterns, rollout, prompts, admin):
        app.include_router(module.router)
    app.add_middleware(RequestGuard, daemon=daemon)
    return app


def openapi_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Return (method, path) of every route in the OpenAPI schema (for tests and docs)."""
    schema: dict[str, Any] = app.openapi()
    return sorted((m.upper(), p) for p, ops in schema["paths"].items() for m in ops)
