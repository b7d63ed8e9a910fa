"""Request bodies of the admin and agent API besides events."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, JsonValue

from .chat import ChatContent
from .fields import PromptName, Strict


class PromptCreate(ChatContent):
    """Create a prompt with its first version (a template or messages), labelled `production`."""

    name: PromptName = Field(description="lowercase '/'-separated name, e.g. support/triage")
    description: Annotated[str, Field(max_length=2000)] = Field(
        "", description="what the prompt is for")


class VersionCreate(ChatContent):
    """Add a version (a template or messages) to a prompt, optionally moving `production`."""

    rationale: Annotated[str, Field(max_length=5000)] = Field("", description="why it changed")
    parent: int | None = Field(None, ge=1, description="the version it derives from")
    make_production: bool = Field(False, description="move the production label now (no canary)")


class RenderRequest(Strict):
    """Variables to render a prompt version with."""

    variables: dict[str, JsonValue] = Field(default_factory=dict,
                                            description="the template's variables")
    version: int | None = Field(None, ge=1, description="the version (default: by label)")
    label: Annotated[str, Field(max_length=64)] = Field(
        "production", description="the label to render when no version is given")


class TokenIssue(Strict):
    """Ask for a new API token."""

    role: Literal["agent", "admin"] = Field(description="agent: resolve and post events; "
                                            "admin: everything")
    name: Annotated[str, Field(max_length=128)] = Field(
        "", description="what the token is for (history shows it)")


class DeploymentCreate(Strict):
    """Start a canary of 1-3 versions against the prompt's production version."""

    prompt: str = Field(description="the prompt to deploy")
    versions: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1, max_length=3)] = (
        Field(description="one to three candidate versions (arms c1, c2, c3)"))
    steps: list[float] | None = Field(None, description=(
        "percentages of the full comparison split, increasing, ending at 100 (it serves "
        "control and each candidate equally: one candidate at 100 gets half the traffic)"))
    policy: dict[str, Any] = Field(default_factory=dict, description="CanaryPolicy overrides")
    requires_approval: bool | None = Field(
        None, description="wait for an admin's approve first (default: the policy's gate)")
    supersede: bool = Field(True, description=(
        "end a machine-written canary that holds the prompt (it ends as superseded, you as "
        "its actor); false: 409 naming it instead, so you can queue behind it. A person's "
        "deployment is never superseded"))


class CommandBody(Strict):
    """Options of an admin command on a deployment."""

    full: bool = Field(False, description="promote: skip the remaining steps")
    arm: str | None = Field(None, description="promote: the winning arm when several are live")
    reason: Annotated[str, Field(max_length=1000)] = Field("", description="recorded with it")


class RollbackBody(Strict):
    """Roll a prompt back: stop its deployment, or move production one step back."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    to: int | None = Field(None, ge=1, description="version to make production (default: the "
                           "one production had before its current version)")
    from_: int | None = Field(None, alias="from", ge=1, description=(
        "the production version you saw: if production was already rolled back from it, "
        "nothing more happens (a retried rollback never goes back twice)"))
    deployment: str | None = Field(None, max_length=200, description=(
        "the deployment you saw running: if it has ended already, nothing more happens"))
    reason: Annotated[str, Field(max_length=1000)] = Field("", description="recorded with it")


class PolicyBody(Strict):
    """Per-prompt canary policy overrides (partial CanaryPolicy)."""

    overrides: dict[str, Any] = Field(description=(
        "every override of the prompt (replaces the stored ones; `promptd policy --set` "
        "merges for you), e.g. {\"steps\": [10, 50, 100]}"))


class LabelSet(Strict):
    """Point a label at a version (``promptd label set NAME LABEL VERSION``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    version: int = Field(..., ge=1, description="the version the label will point at")
    from_: int | None = Field(None, alias="from", ge=0, description=(
        "the version you saw the label at (0: not set): if it moved since, 409 and nothing "
        "changes; a label already at `version` is left as it is"))
    reason: Annotated[str, Field(max_length=1000)] = Field("", description="why, for the log")


class LabelProtect(Strict):
    """Protect a label (only admin tokens move it) or lift the protection."""

    protected: bool = Field(True, description="true protects it, false lifts the protection")
    reason: Annotated[str, Field(max_length=1000)] = Field("", description="why, for the log")
