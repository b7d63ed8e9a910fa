"""Response bodies agents read: what resolve answers, and where appended events landed."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

_MESSAGES = ("a chat prompt's messages (role and content template each; a placeholder "
             "names where inserted messages go); null for a text prompt")
_CONFIG = "the model configuration the version carries (model, temperature, tools, ...)"


class RolloutArm(BaseModel):
    """One arm of a live deployment."""

    arm: str = Field(description="control, c1, c2 or c3")
    version: int = Field(description="the prompt version this arm serves")
    template: str = Field(description="that version's template (empty for a chat prompt)")
    variables: list[str] = Field(description="the variables the template uses")
    messages: list[dict[str, Any]] | None = Field(None, description=_MESSAGES)
    config: dict[str, Any] | None = Field(None, description=_CONFIG)


class RolloutConfig(BaseModel):
    """What an SDK needs to assign subjects itself (``deploy.assignment.assign``)."""

    deployment: str = Field(description="the deployment id")
    step: int = Field(description="the canary step the weights belong to (0-based)")
    weights: dict[str, int] = Field(description="arm -> buckets out of 10,000")
    arms: list[RolloutArm]


class Resolved(BaseModel):
    """What an agent should use now."""

    prompt: str
    version: int
    template: str = Field(description="a text prompt's template (empty for a chat prompt)")
    variables: list[str]
    label: str
    messages: list[dict[str, Any]] | None = Field(None, description=_MESSAGES)
    config: dict[str, Any] | None = Field(None, description=_CONFIG)
    deployment: str | None = None
    arm: str | None = None
    step: int | None = None
    rollout: RolloutConfig | None = Field(
        None, description="the live deployment's weights and arms, so SDKs assign locally")


class AppendedEvent(BaseModel):
    """Where one event landed."""

    event_id: str
    position: int
    duplicate: bool


class AppendResponse(BaseModel):
    """The outcome of an append: one entry per event, in request order."""

    results: list[AppendedEvent]
    stored: int
    duplicates: int
