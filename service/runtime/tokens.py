"""API tokens at run time: authenticate a caller, bootstrap the first admin token."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import structlog
from sqlalchemy import Engine

from service.contract import uuid7
from service.contract.system import SYSTEM_ACTOR, TOKENS_STREAM, TokenIssued
from service.projections.views import load_tokens
from service.runtime import auth
from service.runtime.auth import Principal
from service.runtime.live import LiveState
from service.store import eventlog
from service.store.eventlog import NewEvent, StreamConflict
from service.store.writer import EventWriter

log = structlog.get_logger("promptd.tokens")


class TokenBook:
    """Checks bearer tokens against the live token records; bootstraps the admin token."""

    def __init__(self, live: LiveState, engine: Engine, clock: Callable[[], float]) -> None:
        self._live = live
        self._engine = engine
        self._clock = clock
        self._writer: EventWriter | None = None

    def attach(self, writer: EventWriter) -> None:
        """Give the book the writer it appends the bootstrap token with."""
        self._writer = writer

    def authenticate(self, token: str) -> Principal | None:
        """Return the caller behind a bearer token, or None."""
        return auth.verify(token, self._live.tokens)

    def ensure_admin(self, path: Path) -> Path | None:
        """Issue a bootstrap admin token into ``path`` (mode 0600) if none is active.

        Decided on the ``tokens`` stream: two replicas starting together issue one token
        between them. Returns the path written, or None when an admin token existed.
        """
        assert self._writer is not None, "attach the writer first"
        for _ in range(8):
            with self._engine.connect() as conn:
                version = eventlog.stream_versions(conn, [TOKENS_STREAM])[TOKENS_STREAM]
                records = load_tokens(conn)
            if any(t.role == "admin" and not t.revoked for t in records.values()):
                return None
            token_id, token = auth.new_token("admin")
            event = TokenIssued(token_id=token_id, role="admin", name="bootstrap",
                                token_hash=auth.hash_token(token), actor=SYSTEM_ACTOR)
            try:
                self._writer.append([NewEvent(uuid7(), event.TYPE, event.stream(),
                                              event.payload(), self._clock())],
                                    {TOKENS_STREAM: version})
            except StreamConflict:
                continue  # another process issued one meanwhile: look again
            write_secret(path, token)
            log.warning("admin_token_created", path=str(path.resolve()),
                        hint="read it from this file; it is not logged anywhere")
            return path
        raise RuntimeError("could not bootstrap an admin token: the token stream kept moving")


def write_secret(path: Path, secret: str) -> None:
    """Write ``secret`` to ``path``, readable by its owner only (whatever the umask)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret + "\n")
    os.chmod(path, 0o600)
