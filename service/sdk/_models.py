"""Models agents hold: a resolved prompt, a live rollout, one timed run, the errors."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from service.contract.ids import uuid7

from ._log import EventLogger

log = EventLogger("promptd.sdk")


_RUN_FIELDS = ("subject", "event_id", "success", "score", "error_type", "latency_ms",
               "input_tokens", "output_tokens", "cost_usd", "model", "input_text",
               "output_text", "variables", "metadata")


class PromptdError(Exception):
    """The SDK could not do what was asked; the message says why."""


class PromptUnavailable(PromptdError):
    """``resolve()`` got no answer from the daemon and has no fallback template."""


class BufferFull(PromptdError):
    """Too many recorded events await delivery: the daemon is down or slower than the agent."""


class ClientClosed(PromptdError):
    """The client is closed (or closing) and accepts no more events."""


class Undelivered(PromptdError):
    """``close()`` ran out of time; ``pending`` holds the JSON of every event not stored."""

    def __init__(self, message: str, pending: list[bytes]) -> None:
        super().__init__(message)
        self.pending = pending


@dataclass(frozen=True, slots=True)
class Resolution:
    """The prompt version an agent should use now, and where that answer came from."""

    prompt: str
    version: int | None  # None only for a fallback template: there is no version to credit
    template: str
    variables: tuple[str, ...]
    label: str = "production"
    deployment: str | None = None
    arm: str | None = None
    stale: bool = False  # served past its TTL while a background refresh runs
    from_fallback: bool = False  # the daemon was unreachable: this is the caller's template
    rollout: Rollout | None = None  # a live deployment's config: arms are assigned locally
    step: int | None = None  # the canary step whose weights chose the arm
    stratum: int | None = None  # the stretch of constant weights that chose it (for SRM)
    messages: tuple[dict[str, str], ...] | None = None  # a chat prompt's (None: a text one)
    config: dict[str, Any] | None = None  # the model config the version carries

    @property
    def is_chat(self) -> bool:
        """Return whether this is a chat prompt (render it with ``render_messages``)."""
        return self.messages is not None

    def render(self, **variables: Any) -> str:
        """Return the template rendered in the sandbox with ``variables``."""
        return render(self, **variables)

    def render_messages(self, **values: Any) -> list[dict[str, Any]]:
        """Return the messages to send to an OpenAI-compatible chat API, rendered in the sandbox.

        ``values`` are the variables, and under each placeholder's name (e.g.
        ``history=[...]``) the messages to insert there, passed through as given. A text
        prompt becomes one user message.
        """
        return render_messages(self, **values)

    def for_subject(self, subject: str | None) -> Resolution:
        """Return the arm of the live deployment this subject gets (itself if none)."""
        if self.rollout is None:
            return self
        from deploy.assignment import assign  # deferred: only agents under a canary pay

        arm = assign(self.rollout.deployment, subject or uuid7(), self.rollout.weights)
        chosen = self.rollout.arms[arm]
        return replace(chosen, stale=self.stale) if self.stale else chosen


@dataclass(frozen=True, slots=True)
class Rollout:
    """A deployment's assignment config, as resolve returns it: weights and each arm."""

    deployment: str
    step: int
    weights: dict[str, int]
    arms: dict[str, Resolution]


def render(resolution: Resolution, **variables: Any) -> str:
    """Return ``resolution``'s template rendered by the sandboxed Jinja2 environment."""
    if resolution.messages is not None:
        raise PromptdError(f"{resolution.prompt} v{resolution.version} is a chat prompt: "
                           "render it with render_messages()")
    from improver.templates import render_template  # deferred: importing improver is slow

    return render_template(resolution.template, variables)


def render_messages(resolution: Resolution, **values: Any) -> list[dict[str, Any]]:
    """Return ``resolution``'s messages rendered in the sandbox (a text prompt: one user turn)."""
    if resolution.messages is None:
        return [{"role": "user", "content": render(resolution, **values)}]
    from service.contract.chat import render_messages as render_chat

    return render_chat(resolution.messages, values)


def _messages(value: Any) -> tuple[dict[str, str], ...] | None:
    return None if value is None else tuple(dict(m) for m in value)


def resolution_from(body: Mapping[str, Any]) -> Resolution:
    """Return the Resolution in a ``GET /v1/prompts/{name}/resolve`` answer.

    When the answer carries the deployment's ``rollout`` (weights and every arm), the
    Resolution keeps it: the cache then holds one entry per prompt and picks each subject's
    arm locally, the way feature-flag SDKs do, instead of asking the daemon per subject.
    """
    label = body.get("label", "production")
    rollout = None
    config = body.get("rollout")
    if config:
        arms = {a["arm"]: Resolution(prompt=body["prompt"], version=int(a["version"]),
                                     template=a["template"], variables=tuple(a["variables"]),
                                     label=label, deployment=config["deployment"], arm=a["arm"],
                                      step=int(config["step"]), stratum=config.get("stratum"),
                                      messages=_messages(a.get("messages")),
                                      config=a.get("config"))
                for a in config["arms"]}
        rollout = Rollout(config["deployment"], int(config["step"]), dict(config["weights"]),
                          arms)
    return Resolution(prompt=body["prompt"], version=int(body["version"]),
                      template=body["template"], variables=tuple(body["variables"]),
                      label=label, deployment=body.get("deployment"), arm=body.get("arm"),
                       rollout=rollout, step=body.get("step"), stratum=body.get("stratum"),
                       messages=_messages(body.get("messages")), config=body.get("config"))


@dataclass
class Run:
    """One timed call of a prompt: set its outcome inside the ``with`` block."""

    resolution: Resolution
    subject: str | None = None
    event_id: str = field(default_factory=uuid7)  # known up front, so corrections can cite it
    success: bool | None = None
    score: float | None = None
    error_type: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    model: str | None = None
    input_text: str | None = None
    output_text: str | None = None
    variables: dict[str, Any] | None = None  # set them so lint can replay this run
    metadata: dict[str, Any] = field(default_factory=dict)
    latency_ms: float | None = None
    recorded: bool = False
    started: float = field(default_factory=time.perf_counter)

    def render(self, **variables: Any) -> str:
        """Return the resolved template rendered with ``variables``."""
        return self.resolution.render(**variables)

    def render_messages(self, **values: Any) -> list[dict[str, Any]]:
        """Return the resolved prompt's messages for a chat API (see ``Resolution``)."""
        return self.resolution.render_messages(**values)

    def finish(self, exc_type: type[BaseException] | None) -> dict[str, Any] | None:
        """Stop the clock and return the execution's fields (None: nothing to credit)."""
        self.latency_ms = (time.perf_counter() - self.started) * 1000.0
        if exc_type is not None:  # an escaping exception is a failure, whatever was set
            self.success, self.error_type = False, self.error_type or exc_type.__name__
        elif self.success is None and self.score is None and self.error_type is None:
            self.success = True  # finished without raising and nobody said otherwise
        if self.resolution.version is None:
            log.info("promptd.run_not_recorded", prompt=self.resolution.prompt,
                     reason="a fallback template has no version")
            return None
        r = self.resolution
        return {"prompt": r.prompt, "version": r.version, "deployment": r.deployment,
                "arm": r.arm, "step": r.step, "stratum": r.stratum,
                **{name: getattr(self, name) for name in _RUN_FIELDS}}
