"""Bearer tokens with roles. Only a hash is ever stored; checks are constant-time."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from service.projections.tokens import Role, TokenRecord

TOKEN_PREFIX = "pd"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token id and its role."""

    token_id: str
    role: Role

    @property
    def actor(self) -> str:
        """Return the actor string recorded in events this caller causes."""
        return f"token:{self.token_id}"


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest of a token.

    Tokens carry 256 bits of randomness, so a fast hash is enough: there is nothing to
    brute-force, unlike a password.
    """
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(role: Role) -> tuple[str, str]:
    """Return (token_id, token) for a fresh token; the id is public, the rest is secret."""
    token_id = secrets.token_hex(6)
    return token_id, f"{TOKEN_PREFIX}_{role}_{token_id}_{secrets.token_urlsafe(32)}"


def parse_token_id(token: str) -> str | None:
    """Return the public id inside a token string, or None if it is not one of ours."""
    parts = token.split("_", 3)
    if len(parts) != 4 or parts[0] != TOKEN_PREFIX:
        return None
    return parts[2]


def verify(token: str, records: dict[str, TokenRecord]) -> Principal | None:
    """Return the caller for a presented token, or None if it is unknown, wrong or revoked."""
    token_id = parse_token_id(token)
    record = records.get(token_id) if token_id else None
    # Compare digests even when the id is unknown, so timing says nothing about which ids exist.
    expected = record.token_hash if record else "0" * 64
    ok = hmac.compare_digest(hash_token(token), expected)
    if record is None or not ok or record.revoked:
        return None
    return Principal(record.token_id, record.role)
