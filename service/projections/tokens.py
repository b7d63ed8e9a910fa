"""API tokens: id, role, hash, revocation. The token itself is never stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Connection, update

from service.contract import system
from service.store.eventlog import StoredEvent
from service.store.schema import tokens

Role = Literal["agent", "admin"]


@dataclass(frozen=True, slots=True)
class TokenRecord:
    """A token as the registry knows it: never the secret itself."""

    token_id: str
    role: Role
    name: str
    token_hash: str
    revoked: bool


class TokenProjection:
    """API tokens: id, role, hash, revocation. The token itself is never stored."""

    name = "tokens"
    types = frozenset({"token.issued", "token.revoked"})
    tables = (tokens,)

    def apply(self, conn: Connection, batch: Sequence[StoredEvent]) -> None:
        for e in batch:
            event = system.parse(e.type, e.payload)
            if isinstance(event, system.TokenIssued):
                conn.execute(tokens.insert().values(
                    token_id=event.token_id, role=event.role, name=event.name,
                    token_hash=event.token_hash, issued_at=e.recorded_at,
                    issued_by=event.actor, revoked_at=None,
                ))
            elif isinstance(event, system.TokenRevoked):
                conn.execute(update(tokens).where(tokens.c.token_id == event.token_id)
                             .values(revoked_at=e.recorded_at))
