"""RequestGuard: admission control, request id, body size limit, one log line and metrics."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import structlog
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.contract import CorrectionIn, EventBatch, ExecutionIn
from service.contract.fields import nul_free_context
from service.contract.ids import uuid7
from service.http import events, prompts
from service.http.admission import (
    ADMIN,
    HEALTH,
    HEALTH_IN_FLIGHT,
    INGEST,
    RESOLVE,
    Admission,
    LoopLag,
    client_presence,
    route_class,
)
from service.http.deps import bearer_token
from service.http.errors import error_body
from service.runtime.auth import Principal
from service.runtime.daemon import Daemon
from service.store.writer import AppendAbandoned

log = structlog.get_logger("promptd.http")


_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})
_RESOLVE_PARAMS = {"subject": prompts.SUBJECT_MAX, "label": prompts.LABEL_MAX}
# The hot agent routes RequestGuard may call directly, and the body model of each POST.
_HOT_ROUTES: dict[Callable[..., Any], type[BaseModel] | None] = {
    prompts.resolve: None, events.post_execution: ExecutionIn,
    events.post_correction: CorrectionIn, events.post_events: EventBatch,
}
_SHORTCUTS_KEPT = 4096  # distinct (method, path) remembered: one resolve path per prompt
_SHED_LOG_EVERY_S = 1.0  # one summary line per second while shedding, not one per request
CLIENT_GONE_STATUS = 499  # metrics and log only: nobody is left to read it

@dataclass(frozen=True, slots=True)
class _Shortcut:
    """A request line the app itself routed to one of the hot routes."""

    endpoint: Callable[..., Awaitable[BaseModel]]
    body_model: type[BaseModel] | None
    template: str  # the route's path: the metrics label
    status: int
    name: str | None  # the {name} path parameter, for resolve


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
        settings = daemon.settings
        self.max_body = settings.max_body_bytes
        self.admission = Admission(
            {INGEST: settings.max_in_flight_ingest, RESOLVE: settings.max_in_flight_resolve,
             ADMIN: settings.max_in_flight_admin, HEALTH: HEALTH_IN_FLIGHT},
            settings.max_in_flight, settings.max_ingest_bytes_in_flight)
        self.loop_lag = LoopLag(self.admission, settings.latency_budget_s)
        self._retry_after = str(settings.retry_after_s).encode()
        self._shed_since_log = 0
        self._shed_logged_at = 0.0
        self._shortcuts: dict[tuple[str, str], _Shortcut] = {}
        # Request ids: a UUIDv7 drawn once per process, its last 12 hex digits a counter.
        # Unique per process and cheap: uuid7() per request reads os.urandom, a syscall that
        # hands the GIL to the writer thread in the middle of every request.
        self._id_prefix = uuid7()[:-12]
        self._id_counter = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":  # the loop's delay is watched while the app lives
                watch = asyncio.get_running_loop().create_task(self.loop_lag.run())
                try:
                    await self.app(scope, receive, send)
                finally:
                    watch.cancel()
                return
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope.get("headers") or [])
        request_id = (headers.get(b"x-request-id", b"").decode("latin-1")[:64]
                      or f"{self._id_prefix}{next(self._id_counter) & 0xFFFFFFFFFFFF:012x}")
        klass = route_class(scope["method"], scope["path"])
        length = headers.get(b"content-length")
        # A body of unknown length (chunked) counts as the most it may be; a longer one is
        # admitted as that much and answered 413.
        size = (min(int(length), self.max_body) if length is not None and length.isdigit()
                else self.max_body)
        if not self.admission.enter(klass, size):
            await self._shed(scope, send, klass, request_id, started)
            return
        try:
            gone = client_presence(receive)
            if gone is not None:
                if gone():  # it gave up while the request waited to be read: do nothing
                    self._done(scope, CLIENT_GONE_STATUS, started, request_id, f"({klass})")
                    return
                if klass == INGEST:
                    events.client_gone.set(gone)  # the writer drops appends nobody awaits
            await self._serve(scope, receive, send, headers, request_id, started)
        finally:
            self.admission.leave(klass, size)

    async def _serve(self, scope: Scope, receive: Receive, send: Send,
                     headers: dict[bytes, bytes], request_id: str, started: float) -> None:
        status = {"code": 500}
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await self._send_413(send, request_id)
            self._done(scope, 413, started, request_id)
            return
        shortcut = self._shortcuts.get((scope["method"], scope["path"]))
        if shortcut is not None:
            unused = await self._take_shortcut(shortcut, scope, receive, send, request_id,
                                               started)
            if unused is None:
                return
            receive = unused
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
        except AppendAbandoned:
            status["code"] = CLIENT_GONE_STATUS
        finally:
            self._done(scope, status["code"], started, request_id)
            self._learn_route(scope)

    # -- shortcut to the hot routes ----------------------------------------------------------
    # Ingest and resolve are the hot paths, and FastAPI's route matching, dependency solving
    # and request plumbing cost several times their own work. For a request line the app
    # itself has already routed to one of those routes, RequestGuard calls the route function
    # directly, with the same dependencies' values, the body validated by the same model,
    # the answer serialised by the route's response model and errors answered by the app's
    # own exception handlers: the route stays the single source of truth. Anything unusual
    # (no or bad token, another content type, a body or query the route would refuse) falls
    # through to the app, before anything happened, with the body replayed.

    def _learn_route(self, scope: Scope) -> None:
        route = scope.get("route")
        endpoint = getattr(route, "endpoint", None)
        if (endpoint in _HOT_ROUTES and not scope.get("root_path")
                and len(self._shortcuts) < _SHORTCUTS_KEPT):
            name = (scope.get("path_params") or {}).get("name")
            self._shortcuts[(scope["method"], scope["path"])] = _Shortcut(
                endpoint, _HOT_ROUTES[endpoint], route.path,  # type: ignore[union-attr]
                getattr(route, "status_code", None) or 200, name if isinstance(name, str) else None)

    async def _take_shortcut(self, shortcut: _Shortcut, scope: Scope, receive: Receive,
                             send: Send, request_id: str, started: float) -> Receive | None:
        """Answer through the route function; return None, or the receive for the app."""
        principal = self._principal(scope)
        if principal is None:
            return receive
        if shortcut.body_model is None:
            query = _resolve_query(scope)
            if query is None:
                return receive
            call = shortcut.endpoint(name=shortcut.name, daemon=self.daemon, _=principal,
                                     **query)
        else:
            messages: list[Message] = []
            size, more = 0, True
            while more:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request":
                    return _replaying(messages, receive)
                size += len(message.get("body", b""))
                more = message.get("more_body", False)
                if size > self.max_body:
                    await self._send_413(send, request_id)
                    self._done(scope, 413, started, request_id, shortcut.template)
                    return None
            if _first_header(scope, b"content-type") != b"application/json":
                return _replaying(messages, receive)
            try:
                raw = b"".join(m.get("body", b"") for m in messages)
                # Parsed and validated in one pass from the raw text (no dict round trip);
                # the NUL check is skipped when the text holds no \u0000 escape.
                body = shortcut.body_model.model_validate_json(raw,
                                                               context=nul_free_context(raw))
            except Exception:  # unreadable or invalid: the app answers and names the field
                return _replaying(messages, receive)
            receive = _replaying(messages, receive)
            call = shortcut.endpoint(body=body, daemon=self.daemon, _=principal)
        code = 500
        try:
            try:
                result = await call
            except AppendAbandoned:
                code = CLIENT_GONE_STATUS
                return None
            except Exception as exc:
                handler = _exception_handler(scope, exc)
                if handler is None:
                    raise  # as through the app: the server error middleware answers 500
                response = await handler(Request(scope, receive), exc)
            else:
                response = Response(result.model_dump_json(), status_code=shortcut.status,
                                    media_type="application/json")
            code = response.status_code
            await self._send_tagged(response, scope, receive, send, request_id)
        finally:
            self._done(scope, code, started, request_id, shortcut.template)
        return None

    def _principal(self, scope: Scope) -> Principal | None:
        authorization = _first_header(scope, b"authorization")
        token = bearer_token(authorization.decode("latin-1")) if authorization else None
        return self.daemon.tokens.authenticate(token) if token is not None else None

    @staticmethod
    async def _send_tagged(response: Response, scope: Scope, receive: Receive, send: Send,
                           request_id: str) -> None:
        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"],
                                      (b"x-request-id", request_id.encode("latin-1"))]
            await send(message)

        await response(scope, receive, tagged)

    async def _shed(self, scope: Scope, send: Send, klass: str, request_id: str,
                    started: float) -> None:
        """Answer 503 with Retry-After at once: over capacity, nothing else is done."""
        body = json.dumps(error_body(
            "overloaded", f"promptd is at capacity: {self.admission.refusal(klass)}; retry "
            f"after {self._retry_after.decode()} s")).encode()
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"retry-after", self._retry_after),
            (b"x-request-id", request_id.encode("latin-1"))]})
        await send({"type": "http.response.body", "body": body})
        shortcut = self._shortcuts.get((scope["method"], scope["path"]))
        self.daemon.metrics.http_requests.labels(
            shortcut.template if shortcut is not None else f"({klass})",
            scope["method"] if scope["method"] in _METHODS else "other", "503").inc()
        # A flood must not also flood the log: one summary line per second of shedding.
        self._shed_since_log += 1
        now = time.monotonic()
        if now - self._shed_logged_at >= _SHED_LOG_EVERY_S:
            log.warning("overloaded", shed=self._shed_since_log,
                        in_flight=dict(self.admission.in_flight),
                        caps=dict(self.admission.caps),
                        loop_lag_ms=round(self.loop_lag.lag_s * 1000, 1),
                        duration_ms=round((time.perf_counter() - started) * 1000, 3))
            self._shed_since_log, self._shed_logged_at = 0, now

    async def _send_413(self, send: Send, request_id: str) -> None:
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


def _resolve_query(scope: Scope) -> dict[str, str | None] | None:
    """Return resolve's query parameters, or None unless they are routine (only these two,
    once each, within the route's bounds)."""
    query: dict[str, str | None] = {"subject": None, "label": "production"}
    seen: set[str] = set()
    for key, value in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True):
        limit = _RESOLVE_PARAMS.get(key)
        if limit is None or key in seen or len(value) > limit:
            return None
        seen.add(key)
        query[key] = value
    return query


def _first_header(scope: Scope, name: bytes) -> bytes | None:
    """Return the first value of a header, as Starlette's ``Request.headers.get`` does."""
    return next((v for k, v in scope["headers"] if k == name), None)


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """Return a receive that gives ``messages`` again, then whatever ``receive`` gives."""
    pending = list(messages)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


Handler = Callable[[Request, Exception], Awaitable[Response]]


def _exception_handler(scope: Scope, exc: Exception) -> Handler | None:
    """Return the app's handler for ``exc`` as its exception middleware would pick it."""
    handlers = getattr(scope.get("app"), "exception_handlers", {})
    for cls in type(exc).__mro__:
        if cls is Exception:  # that one belongs to the server error middleware: a 500
            return None
        if cls in handlers:
            return handlers[cls]  # type: ignore[no-any-return]
    return None
