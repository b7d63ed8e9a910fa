"""The events promptd writes itself: every decision, typed, with its actor and evidence.

One frozen model per event type, and no other way to build one: commands construct these,
``payload()`` gives the log's JSON, and readers get the same model back from ``parse`` —
including from logs written by earlier versions (missing fields take the defaults they had
then; ``SCHEMA`` is the version of the shape written now).

Each event names the stream it belongs to: ``prompt:{name}`` holds a prompt's versions,
labels, policy, candidates and deployments (the aggregate whose invariants span them all:
one running deployment, version numbers, what production was before); ``patterns:{name}``
the mining snapshots; ``tokens`` every token event (so "never revoke the last admin token"
is decided on one stream).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from .chat import ChatMessage

SYSTEM_ACTOR = "promptd"
SCHEMA = 1


class SystemEvent(BaseModel):
    """A decision promptd records: who made it, and the fields its type defines."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str] = ""
    actor: str = Field(description="who decided: 'promptd', or 'token:<id>' for a caller")

    def stream(self) -> str:
        """Return the stream this event is appended to."""
        raise NotImplementedError

    def payload(self) -> dict[str, Any]:
        """Return the JSON payload stored in the log."""
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def from_log(cls, payload: dict[str, Any]) -> SystemEvent:
        """Return the event from a stored payload (unknown fields of old logs are dropped)."""
        known = {k: v for k, v in payload.items() if k in cls.model_fields}
        known.setdefault("actor", "unknown")
        return cls.model_validate(known)


class _PromptEvent(SystemEvent):
    prompt: str

    def stream(self) -> str:
        return prompt_stream(self.prompt)


def prompt_stream(prompt: str) -> str:
    """Return the stream of a prompt's aggregate."""
    return f"prompt:{prompt}"


def traffic_stream(prompt: str) -> str:
    """Return the stream agents' executions and corrections of a prompt are appended to."""
    return f"traffic:{prompt}"


TOKENS_STREAM = "tokens"


# -- the prompt registry ------------------------------------------------------------------

class PromptCreated(_PromptEvent):
    """A prompt came into being (its first version follows in the same append)."""

    TYPE = "prompt.created"
    description: str = ""


class VersionCreated(_PromptEvent):
    """A new immutable version of a prompt: a text template, or chat messages, and a config.

    A version without ``messages`` is a text prompt (every log written before chat prompts
    replays as one); a chat version's ``template`` is empty.
    """

    TYPE = "version.created"
    version: int
    template: str
    messages: list[ChatMessage] | None = None
    config: dict[str, JsonValue] | None = None
    variables: list[str] = Field(default_factory=list)
    parent: int | None = None
    author: str = "unknown"
    strategy: str = "manual"
    rationale: str = ""
    addressed_patterns: list[str] = Field(default_factory=list)

    @classmethod
    def from_log(cls, payload: dict[str, Any]) -> SystemEvent:
        """Return the event; logs before the author field credit the actor."""
        if "author" not in payload and "actor" in payload:
            payload = {**payload, "author": payload["actor"]}
        return super().from_log(payload)


class LabelMoved(_PromptEvent):
    """A label now points at another version; ``kind`` says why it moved."""

    TYPE = "label.moved"
    label: str
    version: int
    previous: int | None = None
    reason: str = ""
    # "set" (an admin or a new prompt), "promotion" (a deployment won), "rollback" (undoes
    # the move that made ``previous`` current): rollback walks the history by these.
    kind: str = "set"
    deployment_id: str | None = None


class LabelProtected(_PromptEvent):
    """A label became protected (only admin tokens move it) or unprotected."""

    TYPE = "label.protected"
    label: str
    protected: bool
    reason: str = ""


class PolicySet(_PromptEvent):
    """The prompt's canary policy overrides, replacing the previous ones whole."""

    TYPE = "policy.set"
    overrides: dict[str, JsonValue]


class CandidateProposed(_PromptEvent):
    """A machine-written version, why it was written, and which patterns it addresses."""

    TYPE = "candidate.proposed"
    version: int
    strategy: str
    rationale: str = ""
    addressed_patterns: list[str] = Field(default_factory=list)
    parent: int | None = None
    text_hash: str
    # The offline gate's result when an LLM judged it before live traffic (None: no gate).
    gate: dict[str, Any] | None = None


class CandidateRejected(_PromptEvent):
    """A candidate that will not be deployed, and why."""

    TYPE = "candidate.rejected"
    version: int
    reason: str = ""


# -- deployments (child entities of the prompt aggregate) ---------------------------------

class ArmSpec(BaseModel):
    """One arm of a deployment as started."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    version: int


class DeploymentStarted(_PromptEvent):
    """A canary of one to three candidates against the production version."""

    TYPE = "deployment.started"
    deployment_id: str
    arms: list[ArmSpec]
    policy: dict[str, Any]
    requires_approval: bool = False
    machine_written: bool = True
    reason: str = ""


class _DeploymentDecision(_PromptEvent):
    deployment_id: str
    reason: str = ""
    trigger: str | None = None
    evidence: dict[str, Any] | None = None


class DeploymentApproved(_DeploymentDecision):
    """An admin let a deployment pending approval start its first step."""

    TYPE = "deployment.approved"


class DeploymentStepped(_DeploymentDecision):
    """The canary moved to its next step (more traffic to the candidates)."""

    TYPE = "deployment.stepped"
    from_step: int
    step_index: int
    step_percent: float
    weights: dict[str, int]


class DeploymentPaused(_DeploymentDecision):
    """An admin froze the deployment's step (safety checks keep running)."""

    TYPE = "deployment.paused"


class DeploymentResumed(_DeploymentDecision):
    """An admin resumed a paused deployment."""

    TYPE = "deployment.resumed"


class DeploymentArmEliminated(_DeploymentDecision):
    """One candidate arm left the race (its traffic goes back to control)."""

    TYPE = "deployment.arm_eliminated"
    arm: str


class DeploymentAwaitingPromotion(_DeploymentDecision):
    """A winner waits for an admin's approval before it becomes production."""

    TYPE = "deployment.awaiting_promotion"
    winner: str
    version: int


class DeploymentPromoted(_DeploymentDecision):
    """The winner became production (the label move follows in the same append)."""

    TYPE = "deployment.promoted"
    winner: str
    version: int
    full: bool = False


class DeploymentRolledBack(_DeploymentDecision):
    """The deployment ended without changing production: harm, SRM, inconclusive, admin."""

    TYPE = "deployment.rolled_back"


class DeploymentRejected(_DeploymentDecision):
    """An admin refused a deployment pending approval or a winner awaiting promotion."""

    TYPE = "deployment.rejected"


class DeploymentSuperseded(_DeploymentDecision):
    """An admin's deployment replaced this machine-written one (it ends like a rollback)."""

    TYPE = "deployment.superseded"
    by: str


class CanaryAnalysed(SystemEvent):
    """What one canary tick saw of a serving deployment: each live candidate's effect
    against control (estimate and always-valid bounds per metric) and the boundaries.

    Evidence, not a decision: nothing folds it (replay is unchanged by it), and it has its
    own stream per deployment, so it never conflicts with a decision on the prompt. The
    terminal chart of ``promptd deployment show`` is drawn from these.
    """

    TYPE = "canary.analysed"
    deployment_id: str
    prompt: str
    step_index: int
    # arm -> metric -> {estimate, lower, upper, n_control, n_candidate} (None: no bound)
    effects: dict[str, dict[str, dict[str, float | int | None]]]
    # metric -> {"harm": delta, "promotion": delta}
    boundaries: dict[str, dict[str, float]]

    def stream(self) -> str:
        return canary_stream(self.deployment_id)


def canary_stream(deployment_id: str) -> str:
    """Return the stream of a deployment's per-tick evidence."""
    return f"canary:{deployment_id}"


# -- mining and tokens --------------------------------------------------------------------

class PatternsMined(SystemEvent):
    """A mining snapshot: the prompt's failure patterns, resolved ones and anomalies."""

    TYPE = "patterns.mined"
    prompt: str
    upto_position: int
    records: int = 0
    window_s: float | None = None
    # Snapshots of analytics' frozen dataclasses (tuples inside): stored as JSON.
    patterns: list[dict[str, Any]] = Field(default_factory=list)
    resolved: list[dict[str, Any]] = Field(default_factory=list)
    anomalies: list[dict[str, Any]] = Field(default_factory=list)
    # The window shares were computed on (the latest one with records), and how many
    # failed executions without an error type were counted but formed no pattern.
    share_window: dict[str, Any] | None = None
    counted_failures: int = 0

    def stream(self) -> str:
        return f"patterns:{self.prompt}"


class TokenIssued(SystemEvent):
    """A token was issued; only its hash is ever stored."""

    TYPE = "token.issued"
    token_id: str
    role: str
    name: str = ""
    token_hash: str

    def stream(self) -> str:
        return TOKENS_STREAM


class TokenRevoked(SystemEvent):
    """A token was revoked."""

    TYPE = "token.revoked"
    token_id: str

    def stream(self) -> str:
        return TOKENS_STREAM


EVENT_MODELS: dict[str, type[SystemEvent]] = {
    m.TYPE: m for m in (
        PromptCreated, VersionCreated, LabelMoved, LabelProtected, PolicySet, CandidateProposed,
        CandidateRejected, DeploymentStarted, DeploymentApproved, DeploymentStepped,
        DeploymentPaused, DeploymentResumed, DeploymentArmEliminated,
        DeploymentAwaitingPromotion, DeploymentPromoted, DeploymentRolledBack,
        DeploymentRejected, DeploymentSuperseded, CanaryAnalysed, PatternsMined, TokenIssued,
        TokenRevoked,
    )
}
DEPLOYMENT_EVENT_TYPES = frozenset(t for t in EVENT_MODELS if t.startswith("deployment."))


def parse(event_type: str, payload: dict[str, Any]) -> SystemEvent:
    """Return the typed event of a stored system event; ``KeyError`` for an unknown type."""
    return EVENT_MODELS[event_type].from_log(payload)


def actor_of(event_type: str, payload: dict[str, Any]) -> str:
    """Return who decided a stored system event ("unknown" for a type this version lacks)."""
    model = EVENT_MODELS.get(event_type)
    return model.from_log(payload).actor if model is not None else "unknown"


def from_decision(prompt: str, event_type: str, payload: dict[str, Any]) -> SystemEvent:
    """Return the typed event of a deployment decision made by the pure rules in ``deploy``."""
    return EVENT_MODELS[event_type].model_validate({**payload, "prompt": prompt})
