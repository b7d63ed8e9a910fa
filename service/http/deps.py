"""Dependencies shared by the routes: the daemon and the caller's role.

They are coroutines although they never await: FastAPI runs a plain ``def`` dependency in
its threadpool, and two thread hops per request cost more than the work itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.commands import Commands
from service.http.errors import ApiError
from service.runtime.auth import Principal
from service.runtime.daemon import Daemon


def _daemon(request: Request) -> Daemon:
    return request.app.state.daemon  # type: ignore[no-any-return]


async def get_daemon(request: Request) -> Daemon:
    """Return the daemon this app serves."""
    return _daemon(request)


async def get_commands(request: Request) -> Commands:
    """Return the command path every decision of this app goes through."""
    return request.app.state.commands  # type: ignore[no-any-return]


def bearer_token(authorization: str) -> str | None:
    """Return the token of an ``Authorization: Bearer ...`` header value, or None."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return token.strip()


def _principal(request: Request) -> Principal:
    token = bearer_token(request.headers.get("authorization", ""))
    if token is None:
        raise ApiError(401, "unauthorized", "missing bearer token (Authorization: Bearer ...)",
                       headers={"WWW-Authenticate": "Bearer"})
    principal = _daemon(request).tokens.authenticate(token)
    if principal is None:
        raise ApiError(401, "unauthorized", "invalid or revoked token",
                       headers={"WWW-Authenticate": "Bearer"})
    request.state.principal = principal
    return principal


# Declares the scheme in the OpenAPI schema (Swagger UI's "Authorize"); the header itself is
# read by ``_principal``, which answers 401 in the API's own error shape.
BEARER = HTTPBearer(auto_error=False, scheme_name="bearer", description=(
    "An API token: `Authorization: Bearer pd_...`. Agent tokens resolve and post events; "
    "admin tokens may do everything. The first start writes an admin token to "
    "var/admin.token; `promptd token issue` makes more."))
Bearer = Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]


async def require_agent(request: Request, _: Bearer = None) -> Principal:
    """Return the caller if it holds any valid token (agent or admin)."""
    return _principal(request)


async def require_admin(request: Request, _: Bearer = None) -> Principal:
    """Return the caller if it holds an admin token; 403 for an agent token."""
    principal = _principal(request)
    if principal.role != "admin":
        raise ApiError(403, "forbidden", "this route needs an admin token")
    return principal


DaemonDep = Annotated[Daemon, Depends(get_daemon)]
CommandsDep = Annotated[Commands, Depends(get_commands)]
Agent = Annotated[Principal, Depends(require_agent)]
Admin = Annotated[Principal, Depends(require_admin)]
