"""Events agents post (schema version 1): executions and corrections, alone or in batches.

Everything an agent sends is validated here, before it can reach the log.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, JsonValue, ValidationInfo, field_validator, model_validator

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
    stratum: int | None = Field(
        None, ge=0, le=10_000,
        description="the stretch of constant weights the arm was assigned under (resolve "
        "returns it): the sample-ratio check counts subjects per stratum")
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
        if value is not None:
            if len(value) > 64:
                raise ValueError("at most 64 keys")
            _refuse_non_finite(value)
        return value


TraceId = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{32}$")]
SpanId = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{16}$")]


def span_execution_id(trace_id: str, span_id: str) -> str:
    """Return the event id of the execution an OpenTelemetry span became (``trace:span``)."""
    return f"{trace_id.lower()}:{span_id.lower()}"


class CorrectionIn(Strict):
    """What a person or checker reports about an execution's output."""

    type: Literal["correction"] = Field("correction", description="always correction")
    event_id: EventId | None = Field(None, description="idempotency key; UUIDv7 recommended")
    trace_id: TraceId | None = Field(
        None, description="with span_id: the OpenTelemetry span the execution came from")
    span_id: SpanId | None = Field(None, description="with trace_id: that span's id")
    # Validated even when absent (validate_default), so a correction naming no execution is
    # refused at this field, as it was when the field was required.
    execution_id: EventId | None = Field(
        None, validate_default=True,
        description="the event_id of the execution corrected; or name its span by trace_id "
        "and span_id")
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

    @field_validator("execution_id")
    @classmethod
    def _named(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("trace_id") is None \
                and info.data.get("span_id") is None:
            raise ValueError("a correction names its execution: execution_id, or trace_id "
                             "and span_id")
        return value

    @model_validator(mode="after")
    def _names_its_execution(self) -> CorrectionIn:
        if self.trace_id is None and self.span_id is None:
            return self
        if self.trace_id is None or self.span_id is None:
            raise ValueError("trace_id and span_id name a span together: give both")
        self.trace_id, self.span_id = self.trace_id.lower(), self.span_id.lower()
        derived = span_execution_id(self.trace_id, self.span_id)
        if self.execution_id is not None and self.execution_id != derived:
            raise ValueError(f"execution_id {self.execution_id!r} is not the span's {derived!r}")
        self.execution_id = derived
        return self


def _refuse_non_finite(value: dict[str, Any]) -> None:
    """Raise ValueError naming the first NaN or infinity inside ``value``.

    Python's JSON reader turns 1e400 into infinity and accepts NaN, but neither is JSON: the
    log would hold text no other reader parses, and sums over it turn into NaN.
    """
    # The common case (all finite) walks without building paths: this runs for every event.
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is float:
            if not math.isfinite(item):
                break
        elif kind is dict:
            stack.extend(item.values())
        elif kind is list:
            stack.extend(item)
    else:
        return
    raise ValueError(f"{_path_to_non_finite(value, '')}: must be a finite number")


def _path_to_non_finite(item: Any, path: str) -> str | None:
    if isinstance(item, float) and not math.isfinite(item):
        return path or "value"
    children = (item.items() if isinstance(item, dict)
                else enumerate(item) if isinstance(item, list) else ())
    for key, child in children:
        where = f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else key
        found = _path_to_non_finite(child, where)
        if found is not None:
            return found
    return None


AgentEvent = Annotated[ExecutionIn | CorrectionIn, Field(discriminator="type")]


class EventBatch(Strict):
    """A batch of agent events, stored atomically."""

    events: list[AgentEvent] = Field(min_length=1, description=(
        "executions and corrections; all stored, or none"))


def payload_of(event: ExecutionIn | CorrectionIn) -> dict[str, Any]:
    """Return the log payload of an agent event (no envelope fields, JSON-native values).

    Defaults stay in the payload: a retry is compared with the stored text, and an event
    stored by an older daemon must still match its retry after an upgrade.
    """
    data = event.model_dump(mode="json", exclude={"type", "event_id"}, exclude_none=True)
    data["schema_version"] = SCHEMA_VERSION
    return data
