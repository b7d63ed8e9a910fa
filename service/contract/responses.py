"""Response bodies of the API: what every route answers, with a real example of each.

Admin answers allow fields beyond the documented ones (``extra="allow"``): parts of them are
shaped by the pure packages (a deployment's policy, a pattern), and a field added there must
reach the caller rather than be dropped; a test calls every route and fails on any field the
schema does not document.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

T0 = 1_780_000_000.0  # the examples' clock: unix seconds


def with_example(value: dict[str, Any]) -> ConfigDict:
    """Return a response model's config carrying ``value`` as its schema's real example."""
    return ConfigDict(extra="allow", populate_by_name=True,
                      json_schema_extra={"examples": [value]})


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


# -- agents: resolve and append ----------------------------------------------------------------
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
    step: int = Field(description="the canary step the weights belong to (0-based, as the "
                      "log and executions count it)")
    stratum: int = Field(0, description="the stretch of constant weights these belong to: "
                         "it changes with every step and elimination; report it back")
    weights: dict[str, int] = Field(description="arm -> buckets out of 10,000")
    arms: list[RolloutArm] = Field(description="every arm with the version it serves")


_TEMPLATE = "Triage this ticket: {{ ticket }}"


class Resolved(BaseModel):
    """What an agent should use now."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "prompt": "support/triage", "version": 3, "template": _TEMPLATE,
        "variables": ["ticket"], "label": "production", "deployment": None, "arm": None,
        "step": None, "stratum": None, "rollout": None,
        "messages": None, "config": None}]})

    prompt: str = Field(description="the prompt asked for")
    version: int = Field(description="the version to use for this subject")
    template: str = Field(description="a text prompt's Jinja2 template (render it in the "
                          "sandbox); empty for a chat prompt")
    variables: list[str] = Field(description="the variables the template uses")
    label: str = Field(description="the label resolved, production unless asked otherwise")
    messages: list[dict[str, Any]] | None = Field(None, description=_MESSAGES)
    config: dict[str, Any] | None = Field(None, description=_CONFIG)
    deployment: str | None = Field(None, description="the live deployment, if any")
    arm: str | None = Field(None, description="the subject's arm in it (report it back)")
    step: int | None = Field(None, description="the step whose weights chose the arm (0-based)")
    stratum: int | None = Field(
        None, description="the stretch of constant weights the arm was assigned under "
        "(report it back)")
    rollout: RolloutConfig | None = Field(
        None, description="the live deployment's weights and arms, so SDKs assign locally")


_EVENT_ID = "0190b6e4-0000-7000-8000-000000000001"


class AppendedEvent(BaseModel):
    """Where one event landed."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"event_id": _EVENT_ID, "position": 1042, "duplicate": False}]})

    event_id: str = Field(description="the event's idempotency key (generated when not sent)")
    position: int = Field(description="its position in the log (the original one if duplicate)")
    duplicate: bool = Field(description="true when an event with this id was stored before")


class AppendResponse(BaseModel):
    """The outcome of an append: one entry per event, in request order."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "results": [{"event_id": _EVENT_ID, "position": 1042, "duplicate": False}],
        "stored": 1, "duplicates": 0}]})

    results: list[AppendedEvent] = Field(description="one entry per event, in request order")
    stored: int = Field(description="events newly stored")
    duplicates: int = Field(description="events already in the log (not stored again)")


class Rendered(_Body):
    """A version rendered in the sandbox."""

    model_config = with_example({"prompt": "support/triage", "version": 3,
                             "text": "Triage this ticket: printer on fire"})
    prompt: str = Field(description="the prompt")
    version: int = Field(description="the version rendered")
    text: str | None = Field(description="the rendered text (null for a chat prompt)")
    messages: list[dict[str, Any]] | None = Field(
        None, description="a chat prompt's rendered messages, as an OpenAI-compatible client "
        "takes them (placeholders left out: the SDK inserts them)")
    config: dict[str, Any] | None = Field(None, description=_CONFIG)


# -- the registry -----------------------------------------------------------------------------

_PROMPT = {"name": "support/triage", "description": "first-line ticket triage",
           "created_at": T0, "created_by": "token:5d41402abc4b", "latest_version": 3,
           "labels": {"production": 3}}


class PromptSummary(_Body):
    """A prompt, its labels and its newest version number."""

    model_config = with_example(_PROMPT)
    name: str = Field(description="the prompt's name, e.g. support/triage")
    description: str = Field(description="what the prompt is for")
    created_at: float = Field(description="when it was created (unix seconds)")
    created_by: str = Field(description="who created it (actor)")
    latest_version: int = Field(description="its newest version number")
    labels: dict[str, int] = Field(description="label -> version, e.g. production -> 3")


class PromptList(_Body):
    """Every prompt."""

    model_config = with_example({"prompts": [_PROMPT]})
    prompts: list[PromptSummary] = Field(description="every prompt, by name")


class VersionCounts(_Body):
    """What one version did in production, over all time."""

    executions: int = Field(0, description="executions reported")
    successes: int = Field(0, description="of them successful")
    failures: int = Field(0, description="of them unsuccessful")
    errors: int = Field(0, description="of them with an error_type")
    corrections: int = Field(0, description="corrections reported")
    success_rate: float | None = Field(None, description="successes / executions")
    mean_latency_ms: float | None = Field(None, description="mean reported latency")
    cost_usd: float = Field(0.0, description="total reported cost")


class VersionSummary(_Body):
    """One version of a prompt, without its template."""

    version: int = Field(description="the version number")
    kind: str = Field("text", description="text (a template) or chat (messages)")
    parent: int | None = Field(None, description="the version it was derived from")
    author: str = Field(description="who wrote it (actor)")
    strategy: str = Field(description="how: manual, or the improver's strategy")
    rationale: str = Field(description="why it was written")
    created_at: float = Field(description="when (unix seconds)")
    config: dict[str, Any] | None = Field(None, description=_CONFIG)
    labels: list[str] = Field(description="the labels pointing at it")
    counts: VersionCounts = Field(description="what it did in production")


class PromptDetail(PromptSummary):
    """A prompt with every version and its counts."""

    model_config = with_example({**_PROMPT, "versions": [{
        "version": 3, "parent": 1, "author": "promptd", "strategy": "additive",
        "rationale": "reviewers flagged dates not in ISO format", "created_at": T0 + 600,
        "labels": ["production"], "counts": {
            "executions": 1200, "successes": 1010, "failures": 190, "errors": 4,
            "corrections": 31, "success_rate": 0.8417, "mean_latency_ms": 812.5,
            "cost_usd": 0.41}}]})
    versions: list[VersionSummary] = Field(description="every version, oldest first")


_VERSION = {"prompt": "support/triage", "version": 3, "template": _TEMPLATE,
            "variables": ["ticket"], "parent": 1, "author": "token:5d41402abc4b",
            "strategy": "manual", "rationale": "shorter", "addressed_patterns": [],
            "created_at": T0 + 600}


class Version(_Body):
    """One immutable version of a prompt."""

    model_config = with_example(_VERSION)
    prompt: str = Field(description="the prompt")
    version: int = Field(description="the version number")
    template: str = Field(description="its Jinja2 template (empty for a chat prompt)")
    variables: list[str] = Field(description="the variables the template uses")
    messages: list[dict[str, Any]] | None = Field(None, description=_MESSAGES)
    config: dict[str, Any] | None = Field(None, description=_CONFIG)
    parent: int | None = Field(None, description="the version it was derived from")
    author: str = Field(description="who wrote it (actor)")
    strategy: str = Field(description="how: manual, or the improver's strategy")
    rationale: str = Field(description="why it was written")
    addressed_patterns: list[str] = Field(description="failure patterns it addresses")
    created_at: float = Field(description="when (unix seconds)")


class VersionDiff(_Body):
    """A unified diff from one version's template to another's."""

    model_config = with_example({
        "prompt": "support/triage", "from": 1, "to": 3,
        "diff": "--- support/triage@v1\n+++ support/triage@v3\n@@ -1 +1,2 @@\n"
                " Triage this ticket: {{ ticket }}\n+Write dates as YYYY-MM-DD.\n",
        "strategy": "additive", "rationale": "reviewers flagged dates not in ISO format",
        "addressed_patterns": ["p-date-iso"]})
    from_: int = Field(alias="from", description="the older version")
    to: int = Field(description="the newer version")
    prompt: str = Field(description="the prompt")
    diff: str = Field(description="unified diff; empty when the versions are equal (a chat "
                      "prompt diffs as its messages, each under a [role] line, then [config])")
    changed: list[str] = Field([], description="the parts that differ: template, "
                               "messages[i], config.<key>")
    strategy: str = Field(description="how the newer version was written")
    rationale: str = Field(description="why")
    addressed_patterns: list[str] = Field(description="failure patterns it addresses")


# -- the event log ----------------------------------------------------------------------------

class StoredEventOut(_Body):
    """One event as the log holds it."""

    position: int = Field(description="its place in the log (dense, in commit order)")
    event_id: str = Field(description="its idempotency key")
    type: str = Field(description="execution, correction, or one of promptd's decisions")
    stream: str = Field(description="the stream it belongs to, e.g. prompt:support/triage")
    stream_version: int | None = Field(None, description="its place in the stream (decisions only)")
    recorded_at: float = Field(description="when it was stored (unix seconds)")
    payload: dict[str, JsonValue] = Field(description="the event's fields")


class EventPage(_Body):
    """A page of the log, and where to continue."""

    model_config = with_example({"events": [{
        "position": 1042, "event_id": _EVENT_ID, "type": "execution",
        "stream": "traffic:support/triage", "stream_version": None, "recorded_at": T0 + 60,
        "payload": {"prompt": "support/triage", "version": 3, "success": True,
                    "latency_ms": 840.0}}], "next_after": 1042, "head": 1042})
    events: list[StoredEventOut] = Field(description="the events, oldest first")
    next_after: int = Field(description="pass as after= to continue")
    head: int = Field(description="the newest position in the log")


# -- admin --------------------------------------------------------------------------------------

class IssuedToken(_Body):
    """A new token: its secret is shown here once and never again."""

    model_config = with_example({"token_id": "5d41402abc4b", "role": "agent", "name": "support-bot",
                             "token": "pd_agent_5d41402abc4b_" + "x" * 43})
    token_id: str = Field(description="the public id (actors are token:<id>)")
    role: str = Field(description="agent or admin")
    name: str = Field(description="what the token is for")
    token: str = Field(description="the secret: send it as Authorization: Bearer <token>")


class TokenInfo(_Body):
    """A token, without its secret."""

    token_id: str = Field(description="the public id")
    role: str = Field(description="agent or admin")
    name: str = Field(description="what the token is for")
    revoked: bool = Field(description="true once revoked")


class TokenList(_Body):
    """Every token (never a secret)."""

    model_config = with_example({"tokens": [{"token_id": "5d41402abc4b", "role": "agent",
                                         "name": "support-bot", "revoked": False}]})
    tokens: list[TokenInfo] = Field(description="every token, by id")


class RevokedToken(_Body):
    """A revoked token."""

    model_config = with_example({"token_id": "5d41402abc4b", "revoked": True})
    token_id: str = Field(description="the token's id")
    revoked: bool = Field(description="always true")


class Status(_Body):
    """The daemon at a glance."""

    model_config = with_example({"version": "0.1.0", "backend": "sqlite", "log_position": 1042,
                             "projection_lag": 0, "writer_queue_depth": 0, "prompts": 2,
                             "versions": 5, "uptime_s": 3600.25})
    version: str = Field(description="promptd's version")
    backend: str = Field(description="sqlite or postgresql")
    log_position: int = Field(description="the newest position in the log")
    projection_lag: int = Field(description="events the slowest read model has yet to fold")
    writer_queue_depth: int = Field(description="append requests waiting for a group commit")
    prompts: int = Field(description="prompts in the registry")
    versions: int = Field(description="versions of all prompts")
    uptime_s: float = Field(description="seconds since this process started")


class JobRun(_Body):
    """A job run on request."""

    model_config = with_example({"job": "mine", "ok": True,
                                 "result": {"prompts": 2, "patterns": 4}})
    job: str = Field(description="mine, improve or canary")
    ok: bool = Field(description="always true (a failed job answers 500)")
    result: JsonValue = Field(description="what the job reports about its run")


class Health(_Body):
    """The process answers."""

    model_config = with_example({"status": "ok"})
    status: str = Field(description="ok")


class Ready(_Body):
    """The database answers and the read models are caught up."""

    model_config = with_example({"status": "ready", "projection_lag": 0})
    status: str = Field(description="ready")
    projection_lag: int = Field(description="0: every read model has folded the whole log")


__all__ = [
    "T0", "AppendResponse", "AppendedEvent", "EventPage", "Health", "IssuedToken", "JobRun",
    "PromptDetail", "PromptList", "PromptSummary", "Ready", "Rendered", "Resolved",
    "RevokedToken", "RolloutArm", "RolloutConfig", "Status", "StoredEventOut", "TokenInfo",
    "TokenList", "Version", "VersionCounts", "VersionDiff", "VersionSummary",
]
