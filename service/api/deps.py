"""Dependencies shared by the routes: the daemon and the caller's role."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ..auth import Principal
from ..daemon import Daemon
from .errors import ApiError


def get_daemon(request: Request) -> Daemon:
    """Return the daemon this app serves."""
    return request.app.state.daemon  # type: ignore[no-any-return]


def _principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthorized", "missing bearer token (Authorization: Bearer ...)",
                       headers={"WWW-Authenticate": "Bearer"})
    principal = get_daemon(request).authenticate(token.strip())
    if principal is None:
        raise ApiError(401, "unauthorized", "invalid or revoked token",
                       headers={"WWW-Authenticate": "Bearer"})
    request.state.principal = principal
    return principal


def require_agent(request: Request) -> Principal:
    """Return the caller if it holds any valid token (agent or admin)."""
    return _principal(request)


def require_admin(request: Request) -> Principal:
    """Return the caller if it holds an admin token; 403 for an agent token."""
    principal = _principal(request)
    if principal.role != "admin":
        raise ApiError(403, "forbidden", "this route needs an admin token")
    return principal


DaemonDep = Annotated[Daemon, Depends(get_daemon)]
Agent = Annotated[Principal, Depends(require_agent)]
Admin = Annotated[Principal, Depends(require_admin)]
