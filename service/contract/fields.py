"""Field types and limits shared by every request body and event of the contract."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    model_validator,
)

SCHEMA_VERSION = 1
PROMPT_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$")
MAX_TEXT = 100_000
MAX_TEMPLATE = 200_000
MAX_VERSION = 2**31 - 1  # version columns are 32-bit INTEGER on PostgreSQL
SEVERITY_WEIGHT = {"low": 1.0, "medium": 2.0, "high": 3.0, "critical": 5.0}


# The last path parts of the routes under /v1/prompts/{name}/...: a prompt whose name ended
# in one would be shadowed by that route (GET /v1/prompts/x/resolve resolves x; GET
# /v1/prompts/y/versions/1 shows version 1 of y). A test derives them from the app's routes.
ROUTE_SUFFIXES = frozenset({"versions", "diff", "resolve", "render", "patterns", "rollback",
                            "history", "candidates", "policy", "labels"})
# Routes with a path value after the suffix (versions/{version}, labels/{label}[/protect]).
_VALUE_ROUTES = {"versions": ("",), "labels": ("", "protect")}


def _shadowed_tail(parts: list[str]) -> str | None:
    """Return the route tail a name made of ``parts`` ends in, or None."""
    if parts[-1] in ROUTE_SUFFIXES:
        return parts[-1]
    for suffix, rests in _VALUE_ROUTES.items():
        for rest in rests:
            tail = [suffix, "*"] + ([rest] if rest else [])
            if len(parts) > len(tail) and all(
                    t == "*" or t == p for t, p in zip(tail, parts[-len(tail):], strict=True)):
                return "/".join(parts[-len(tail):])
    return None


def _prompt_name(value: str) -> str:
    # fullmatch: with match, "$" also matches before a trailing newline ("x\n" was taken).
    if not PROMPT_NAME_RE.fullmatch(value):
        raise ValueError(
            "prompt name must be lowercase letters, digits, '.', '_', '-' in '/'-separated parts"
        )
    tail = _shadowed_tail(value.split("/"))
    if tail is not None:
        raise ValueError(
            f"prompt name must not end in {tail!r}: the routes under /v1/prompts/<name>/ use "
            f"it (reserved last parts: {', '.join(sorted(ROUTE_SUFFIXES))}, versions/<n>, "
            "labels/<label>, labels/<label>/protect)")
    return value


# The pattern is in the schema only (generated clients, fuzzers); the validator checks it with
# fullmatch and adds the route-suffix rule.
PromptName = Annotated[str, Field(min_length=1, max_length=128,
                                   json_schema_extra={"pattern": PROMPT_NAME_RE.pattern}),
                       AfterValidator(_prompt_name)]
ShortText = Annotated[str, Field(max_length=200)]
LongText = Annotated[str, Field(max_length=MAX_TEXT)]
EventId = Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


FiniteFloat = Annotated[float, AfterValidator(_finite)]


NUL_FREE = "nul_free"  # validation context key: the raw JSON text holds no \u0000 escape


def nul_free_context(raw: bytes) -> dict[str, bool]:
    """Return the validation context for a body parsed from the raw JSON text ``raw``."""
    return {NUL_FREE: b"\\u0000" not in raw}


class Strict(BaseModel):
    """A body that refuses unknown fields and NUL characters in any string."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    @model_validator(mode="after")
    def _no_nul(self, info: ValidationInfo) -> Any:
        # PostgreSQL text cannot hold NUL: refused here, it would fail the whole group commit.
        # One pass per model, not a validator per field: this is the ingest hot path. A caller
        # that parsed raw JSON text without a \u0000 escape says so (context nul_free): JSON
        # text cannot carry a NUL any other way (the parser refuses raw control characters).
        if info.context and info.context.get(NUL_FREE):
            return self
        for name, value in self.__dict__.items():
            if isinstance(value, str) and "\x00" in value:
                raise ValueError(f"{name}: must not contain NUL (\\x00) characters")
        return self
