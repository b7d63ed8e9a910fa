"""The public event contract (schema version 1) and the other HTTP request bodies.

Everything an agent or admin sends is validated here, before it can reach the log.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)

SCHEMA_VERSION = 1
PROMPT_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$")
MAX_TEXT = 100_000
MAX_TEMPLATE = 200_000
MAX_VERSION = 2**31 - 1  # version columns are 32-bit INTEGER on PostgreSQL
SEVERITY_WEIGHT = {"low": 1.0, "medium": 2.0, "high": 3.0, "critical": 5.0}


def _prompt_name(value: str) -> str:
    if not PROMPT_NAME_RE.match(value):
        raise ValueError(
            "prompt name must be lowercase letters, digits, '.', '_', '-' in '/'-separated parts"
        )
    return value


PromptName = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_prompt_name)]
ShortText = Annotated[str, Field(max_length=200)]
LongText = Annotated[str, Field(max_length=MAX_TEXT)]
EventId = Annotated[str, Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


FiniteFloat = Annotated[float, AfterValidator(_finite)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    @model_validator(mode="after")
    def _no_nul(self) -> Any:
        # PostgreSQL text cannot hold NUL: refused here, it would fail the whole group commit.
        # One pass per model, not a validator per field: this is the ingest hot path.
        for name, value in self.__dict__.items():
            if isinstance(value, str) and "\x00" in value:
                raise ValueError(f"{name}: must not contain NUL (\\x00) characters")
        return self


class ExecutionIn(_Strict):
    """What an agent reports after one run of a prompt."""

    type: Literal["execution"] = "execution"
    event_id: EventId | None = Field(None, description="idempotency key; UUIDv7 recommended")
    prompt: PromptName
    version: int = Field(ge=1, le=MAX_VERSION)
    deployment: ShortText | None = None
    arm: ShortText | None = None
    step: int | None = Field(
        None, ge=0, le=100,
        description="the canary step the arm was assigned under (resolve returns it); "
        "late reports then count in the step whose weights chose them")
    subject: ShortText | None = None
    success: bool | None = None
    score: Annotated[FiniteFloat, Field(ge=0.0, le=1.0)] | None = None
    latency_ms: Annotated[FiniteFloat, Field(ge=0.0, le=86_400_000)] | None = None
    input_tokens: int | None = Field(None, ge=0, le=10_000_000)
    output_tokens: int | None = Field(None, ge=0, le=10_000_000)
    cost_usd: Annotated[FiniteFloat, Field(ge=0.0, le=1_000_000)] | None = None
    error_type: ShortText | None = None
    model: ShortText | None = None
    input_text: LongText | None = None
    output_text: LongText | None = None
    variables: dict[str, JsonValue] | None = Field(
        None, description="the variables the template was rendered with (lint replays them)"
    )
    metadata: dict[str, JsonValue] = Field(default_factory=dict)
    occurred_at: datetime | None = None

    @model_validator(mode="after")
    def _has_outcome(self) -> ExecutionIn:
        if self.success is None and self.score is None and self.error_type is None:
            raise ValueError("an execution needs an outcome: success, score or error_type")
        return self

    @field_validator("metadata", "variables")
    @classmethod
    def _bounded(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and len(value) > 64:
            raise ValueError("at most 64 keys")
        return value


class CorrectionIn(_Strict):
    """What a person or checker reports about an execution's output."""

    type: Literal["correction"] = "correction"
    event_id: EventId | None = None
    execution_id: EventId
    prompt: PromptName
    version: int = Field(ge=1, le=MAX_VERSION)
    category: Annotated[str, Field(min_length=1, max_length=100)]
    reason: LongText = ""
    original_output: LongText | None = None
    corrected_output: LongText | None = None
    severity: Literal["low", "medium", "high", "critical"] = "medium"
    author: ShortText | None = None
    occurred_at: datetime | None = None


AgentEvent = Annotated[ExecutionIn | CorrectionIn, Field(discriminator="type")]


class EventBatch(_Strict):
    """A batch of agent events, stored atomically."""

    events: list[AgentEvent] = Field(min_length=1)


class PromptCreate(_Strict):
    """Create a prompt with its first version, labelled `production`."""

    name: PromptName
    template: Annotated[str, Field(min_length=1, max_length=MAX_TEMPLATE)]
    description: Annotated[str, Field(max_length=2000)] = ""


class VersionCreate(_Strict):
    """Add a version to a prompt (optionally moving the `production` label to it)."""

    template: Annotated[str, Field(min_length=1, max_length=MAX_TEMPLATE)]
    rationale: Annotated[str, Field(max_length=5000)] = ""
    parent: int | None = Field(None, ge=1)
    make_production: bool = Field(False, description="move the production label now (no canary)")


class RenderRequest(_Strict):
    """Variables to render a prompt version with."""

    variables: dict[str, JsonValue] = Field(default_factory=dict)
    version: int | None = Field(None, ge=1)
    label: Annotated[str, Field(max_length=64)] = "production"


class TokenIssue(_Strict):
    """Ask for a new API token."""

    role: Literal["agent", "admin"]
    name: Annotated[str, Field(max_length=128)] = ""


def payload_of(event: ExecutionIn | CorrectionIn) -> dict[str, Any]:
    """Return the log payload of an agent event (no envelope fields, JSON-native values)."""
    data = event.model_dump(mode="json", exclude={"type", "event_id"}, exclude_none=True)
    data["schema_version"] = SCHEMA_VERSION
    return data
