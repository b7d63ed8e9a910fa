"""The FastAPI application: routes, error shape, body limit and request logging."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qsl

import structlog
from fastapi import FastAPI
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import __version__
from .api import admin, events, health, patterns, prompts, rollout
from .api.deps import bearer_token
from .api.errors import error_body, install_error_handlers
from .daemon import Daemon
from .ids import uuid7

log = structlog.get_logger("promptd.http")


_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})
_RESOLVE_PARAMS = {"subject": prompts.SUBJECT_MAX, "label": prompts.LABEL_MAX}
_RESOLVE_PATHS_KEPT = 4096  # distinct resolve paths remembered (one per prompt in practice)


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
        # Paths the app itself routed to the resolve route: path -> (prompt name, template).
        self._resolve_paths: dict[str, tuple[str, str]] = {}

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
        if scope["method"] == "GET" and scope["path"] in self._resolve_paths:
            response = self._resolve_fast(scope)
            if response is not None:
                await self._send_tagged(response, scope, receive, send, request_id)
                self._done(scope, 200, started, request_id, self._resolve_paths[scope["path"]][1])
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
            self._learn_route(scope)

    # -- resolve fast path -----------------------------------------------------------------
    # Resolve is the hottest read, and FastAPI's route matching and dependency solving cost
    # several times the lookup itself. The resolve route stays the single source of truth:
    # a path takes this path only after the app itself routed it to that route, and anything
    # unusual (no or bad token, unknown prompt or label, other query parameters, values out
    # of bounds, any error) falls through to the app, which answers as always.

    def _learn_route(self, scope: Scope) -> None:
        route = scope.get("route")
        if (getattr(route, "endpoint", None) is prompts.resolve and scope["method"] == "GET"
                and not scope.get("root_path")
                and len(self._resolve_paths) < _RESOLVE_PATHS_KEPT):
            name = (scope.get("path_params") or {}).get("name")
            if isinstance(name, str):
                self._resolve_paths[scope["path"]] = (name, route.path)  # type: ignore[union-attr]

    def _resolve_fast(self, scope: Scope) -> Response | None:
        """Return the resolve route's answer for a routine request, or None to let it answer."""
        daemon = self.daemon
        authorization = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        token = bearer_token(authorization.decode("latin-1")) if authorization else None
        if token is None or daemon.authenticate(token) is None:
            return None
        query: dict[str, str] = {}
        for key, value in parse_qsl(scope["query_string"].decode("latin-1"),
                                    keep_blank_values=True):
            limit = _RESOLVE_PARAMS.get(key)
            if limit is None or key in query or len(value) > limit:
                return None
            query[key] = value
        started = time.perf_counter()
        try:
            resolved = prompts.resolution_for(daemon, self._resolve_paths[scope["path"]][0],
                                              query.get("subject"),
                                              query.get("label", "production"))
            body = resolved.model_dump_json().encode()
        except Exception:  # the route answers it: 404, or the same error as here
            return None
        daemon.metrics.resolve_seconds.observe(time.perf_counter() - started)
        return Response(content=body, media_type="application/json")

    @staticmethod
    async def _send_tagged(response: Response, scope: Scope, receive: Receive, send: Send,
                           request_id: str) -> None:
        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"],
                                      (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        await response(scope, receive, tagged)

    async def _send_413(self, send: Send, request_id: str) -> None:
        import json

        body = json.dumps(error_body(
            "body_too_large", f"request body exceeds {self.max_body} bytes")).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"x-request-id", request_id.encode("latin-1"))]})
        await send({"type": "http.response.body", "body": body})

    def _done(self, scope: Scope, code: int, started: float, request_id: str,
              template: str | None = None) -> None:
        if template is None:
            template = getattr(scope.get("route"), "path", None) or "unmatched"
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
