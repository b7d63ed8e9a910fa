"""Response bodies agents read: what resolve answers, and where appended events landed."""

from __future__ import annotations

from pydantic import BaseModel, Field


class RolloutArm(BaseModel):
    """One arm of a live deployment."""

    arm: str = Field(description="control, c1, c2 or c3")
    version: int = Field(description="the prompt version this arm serves")
    template: str = Field(description="that version's template")
    variables: list[str] = Field(description="the variables the template uses")


class RolloutConfig(BaseModel):
    """What an SDK needs to assign subjects itself (``deploy.assignment.assign``)."""

    deployment: str = Field(description="the deployment id")
    step: int = Field(description="the canary step the weights belong to (0-based)")
    stratum: int = Field(0, description="the stretch of constant weights these belong to: "
                         "it changes with every step and elimination; report it back")
    weights: dict[str, int] = Field(description="arm -> buckets out of 10,000")
    arms: list[RolloutArm]


class Resolved(BaseModel):
    """What an agent should use now."""

    prompt: str
    version: int
    template: str
    variables: list[str]
    label: str
    deployment: str | None = None
    arm: str | None = None
    step: int | None = None
    stratum: int | None = None
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
