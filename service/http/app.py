"""The FastAPI application: the routers, the error handlers and the request guard."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.routing import APIRoute

from service import __version__
from service.commands import Commands
from service.http import (
    admin,
    events,
    health,
    labels,
    patterns,
    prompts,
    report,
    rollout,
    traces,
    transfer,
)
from service.http.docs import install_docs
from service.http.guard import RequestGuard
from service.http.handlers import install_error_handlers
from service.runtime.daemon import Daemon

log = structlog.get_logger("promptd.http")


def operation_id(route: APIRoute) -> str:
    """Return a route's OpenAPI operationId: the name of its function."""
    return route.name


def create_app(daemon: Daemon, commands: Commands, *,
               manage_lifecycle: bool = True) -> FastAPI:
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
        # Swagger UI from this process's own files (docs.py), so /docs works offline.
        docs_url=None, redoc_url=None,
        # A route's operationId is its function's name (create_prompt, resolve): stable, and
        # what a generated client names its methods and models after; a test pins them.
        generate_unique_id_function=operation_id,
    )
    install_docs(app)
    app.state.daemon = daemon
    app.state.commands = commands
    install_error_handlers(app)
    # Routes under /v1/prompts/{name}/... come before the prompts router's catch-all
    # GET /v1/prompts/{name}, since names may contain slashes.
    for module in (health, events, traces, patterns, rollout, report, labels, transfer, prompts,
                   admin):
        app.include_router(module.router)
    app.add_middleware(RequestGuard, daemon=daemon)
    return app


def openapi_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Return (method, path) of every route in the OpenAPI schema (for tests and docs)."""
    schema: dict[str, Any] = app.openapi()
    return sorted((m.upper(), p) for p, ops in schema["paths"].items() for m in ops)
