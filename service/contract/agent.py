"""Events agents post (schema version 1): executions and corrections, alone or in batches.

Everything an agent sends is validated here, before it can reach the log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, JsonValue, field_validator, model_validator

from .fields import (
    MAX_VERSION,
    SCHEMA_VERSION,
    EventId,
    FiniteFloat,
    LongText,
    PromptName,
    ShortText,
    Strict,
)


class ExecutionIn(Strict):
    """What an agent reports after one run of a prompt."""

    type: Literal["execution"] = Field("execution", description="always execution")
    event_id: EventId | None = Field(None, description="idempotency key; UUIDv7 recommended")
    prompt: PromptName = Field(description="the prompt run, e.g. support/triage")
    version: int = Field(ge=1, le=MAX_VERSION, description="the version resolve answered")
    deployment: ShortText | None = Field(None, description="the deployment resolve answered")
    arm: ShortText | None = Field(None, description="the arm resolve answered (c1, control)")
    step: int | None = Field(
        None, ge=0, le=100,
        description="the canary step the arm was assigned under (resolve returns it); "
        "late reports then count in the step whose weights chose them")
    subject: ShortText | None = Field(None, description="the user or session it ran for")
    success: bool | None = Field(None, description="whether the run did its job")
    score: Annotated[FiniteFloat, Field(ge=0.0, le=1.0)] | None = Field(
        None, description="a quality score in [0, 1] (>= 0.5 counts as a success)")
    latency_ms: Annotated[FiniteFloat, Field(ge=0.0, le=86_400_000)] | None = Field(
        None, description="how long the LLM call took")
    input_tokens: int | None = Field(None, ge=0, le=10_000_000, description="prompt tokens")
    output_tokens: int | None = Field(None, ge=0, le=10_000_000, description="answer tokens")
    cost_usd: Annotated[FiniteFloat, Field(ge=0.0, le=1_000_000)] | None = Field(
        None, description="what the call cost")
    error_type: ShortText | None = Field(None, description="the error, when the call failed")
    model: ShortText | None = Field(None, description="the model called")
    input_text: LongText | None = Field(None, description="the input (mining reads it)")
    output_text: LongText | None = Field(None, description="the answer (mining reads it)")
    variables: dict[str, JsonValue] | None = Field(
        None, description="the variables the template was rendered with (lint replays them)"
    )
    metadata: dict[str, JsonValue] = Field(default_factory=dict,
                                           description="anything else, up to 64 keys")
    occurred_at: datetime | None = Field(None, description="when it ran (default: when stored)")

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


class CorrectionIn(Strict):
    """What a person or checker reports about an execution's output."""

    type: Literal["correction"] = Field("correction", description="always correction")
    event_id: EventId | None = Field(None, description="idempotency key; UUIDv7 recommended")
    execution_id: EventId = Field(description="the event_id of the execution corrected")
    prompt: PromptName = Field(description="that execution's prompt")
    version: int = Field(ge=1, le=MAX_VERSION, description="that execution's version")
    category: Annotated[str, Field(min_length=1, max_length=100)] = Field(
        description="what kind of problem, e.g. format, tone, citation")
    reason: LongText = Field("", description="what was wrong, in the reviewer's words")
    original_output: LongText | None = Field(None, description="the answer as given")
    corrected_output: LongText | None = Field(None, description="the answer as it should be")
    severity: Literal["low", "medium", "high", "critical"] = Field(
        "medium", description="weighs the pattern it joins: low 1, medium 2, high 3, critical 5")
    author: ShortText | None = Field(None, description="who corrected it")
    occurred_at: datetime | None = Field(None, description="when (default: when stored)")


AgentEvent = Annotated[ExecutionIn | CorrectionIn, Field(discriminator="type")]


class EventBatch(Strict):
    """A batch of agent events, stored atomically."""

    events: list[AgentEvent] = Field(min_length=1, description=(
        "executions and corrections; all stored, or none"))


def payload_of(event: ExecutionIn | CorrectionIn) -> dict[str, Any]:
    """Return the log payload of an agent event (no envelope fields, JSON-native values)."""
    data = event.model_dump(mode="json", exclude={"type", "event_id"}, exclude_none=True)
    data["schema_version"] = SCHEMA_VERSION
    return data
