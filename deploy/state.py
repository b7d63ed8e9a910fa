"""A deployment's state as a fold over its events (the "evolve" half of a decider).

The log is the truth: ``evolve`` applies one event to the state, and replaying the same
events always rebuilds the same state, so a restarted daemon takes the same next decision.
Events that the current phase no longer allows (a step decided by a tick that raced an
admin's rollback, a duplicate tick) are ignored rather than applied, first writer wins,
and a replay ignores them the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cached_property
from typing import Any

from deploy.assignment import BUCKETS, CANDIDATE_ARMS, CONTROL, bucket_ranges
from deploy.decision import Decision, decision
from deploy.policy import CanaryPolicy


class Phase(StrEnum):
    """Where a deployment stands."""

    PENDING_APPROVAL = "pending_approval"
    RUNNING = "running"
    AWAITING_PROMOTION = "awaiting_promotion"
    PAUSED = "paused"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    SUPERSEDED = "superseded"  # replaced by an admin's deployment; production unchanged


TERMINAL = frozenset({Phase.PROMOTED, Phase.ROLLED_BACK, Phase.SUPERSEDED})
# Phases in which candidates serve traffic, so the safety rules must keep watching.
SERVING = frozenset({Phase.RUNNING, Phase.PAUSED, Phase.AWAITING_PROMOTION})


@dataclass(frozen=True, slots=True)
class Arm:
    """One arm of a deployment: "control" (the live version) or a candidate c1..c3."""

    name: str
    version: int


@dataclass(frozen=True)
class DeploymentState:
    """Everything the decision rules need to know about one deployment."""

    deployment_id: str
    prompt: str
    arms: tuple[Arm, ...]
    policy: CanaryPolicy
    phase: Phase
    step_index: int
    step_started_at: float
    started_at: float
    eliminated: tuple[str, ...] = ()
    # (arm, step_index) per elimination, for the record.
    eliminated_in_step: tuple[tuple[str, int], ...] = ()
    # The step of every stratum so far: a new stratum begins whenever the weights change
    # (a step, an elimination, the approval that starts traffic), so that data within one
    # stratum were all assigned by the same weights. The last entry is the current one.
    stratum_steps: tuple[int, ...] = (0,)
    machine_written: bool = True
    winner: str | None = None
    ended_at: float | None = None
    outcome_reason: str = ""
    last_changed_at: float = 0.0

    # Cached: the state is frozen, and a tick over many deployments asks for these often.
    @cached_property
    def candidates(self) -> tuple[Arm, ...]:
        """Return every candidate arm, eliminated or not."""
        return tuple(arm for arm in self.arms if arm.name != CONTROL)

    @cached_property
    def live_candidates(self) -> tuple[Arm, ...]:
        """Return the candidate arms still in the race."""
        return tuple(arm for arm in self.candidates if arm.name not in self.eliminated)

    @cached_property
    def arm_names(self) -> tuple[str, ...]:
        """Return every arm's name, control first, in the order of ``arms``."""
        return tuple(arm.name for arm in self.arms)

    @cached_property
    def arm_index(self) -> dict[str, int]:
        """Return each arm's position in ``arms`` by name (callers must not mutate it)."""
        return {name: i for i, name in enumerate(self.arm_names)}

    @property
    def is_terminal(self) -> bool:
        """Return whether the deployment has ended (promoted or rolled back)."""
        return self.phase in TERMINAL

    @property
    def stratum(self) -> int:
        """Return the index of the current stratum (the key of ``StepStats``)."""
        return len(self.stratum_steps) - 1

    def strata_of_step(self, step_index: int) -> tuple[int, ...]:
        """Return the strata recorded while the deployment was at ``step_index``."""
        return tuple(i for i, step in enumerate(self.stratum_steps) if step == step_index)

    @property
    def at_last_step(self) -> bool:
        """Return whether the deployment is at the full comparison split."""
        return self.step_index >= self.policy.last_step

    def version_of(self, arm_name: str) -> int:
        """Return the prompt version an arm serves; ``KeyError`` for an unknown arm."""
        version = self._versions.get(arm_name)
        if version is None:
            raise KeyError(f"deployment {self.deployment_id} has no arm {arm_name!r}")
        return version

    @cached_property
    def _versions(self) -> dict[str, int]:
        return {arm.name: arm.version for arm in self.arms}

    def weights_at(self, step_index: int, eliminated: Sequence[str] = ()) -> dict[str, int]:
        """Return basis points per arm at ``step_index`` with ``eliminated`` arms removed."""
        # Each candidate's share is fixed by the step and the number of candidates at the
        # start, not of live ones: redistributing an eliminated arm's traffic would move
        # other subjects between arms; it goes back to control instead.
        share = math.floor(self.policy.steps[step_index] * BUCKETS / 100 / len(self.arms) + 1e-9)
        weights = {arm.name: share for arm in self.candidates if arm.name not in eliminated}
        weights = {CONTROL: BUCKETS - sum(weights.values()), **weights}
        return weights

    def weights(self) -> dict[str, int]:
        """Return basis points per live arm, summing to 10,000 (what resolve serves now)."""
        return dict(self._weights)

    @cached_property
    def live_arms(self) -> tuple[tuple[str, ...], tuple[float, ...]]:
        """Return the arms now served and their basis points, in ``weights()`` order."""
        served = [(arm, w) for arm, w in self._weights.items() if w > 0]
        return tuple(a for a, _ in served), tuple(float(w) for _, w in served)

    @cached_property
    def _weights(self) -> dict[str, int]:
        if self.phase == Phase.PROMOTED and self.winner is not None:
            return {self.winner: BUCKETS}
        if self.phase in (Phase.PENDING_APPROVAL, Phase.ROLLED_BACK, Phase.SUPERSEDED):
            return {CONTROL: BUCKETS}
        return self.weights_at(self.step_index, self.eliminated)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-able view for the API and the deployment projection."""
        return {
            "deployment_id": self.deployment_id,
            "prompt": self.prompt,
            "arms": [{"name": a.name, "version": a.version} for a in self.arms],
            "phase": self.phase.value,
            "step_index": self.step_index,
            "stratum": self.stratum,
            "step_percent": self.policy.steps[self.step_index],
            "step_started_at": self.step_started_at,
            "started_at": self.started_at,
            "eliminated": list(self.eliminated),
            "machine_written": self.machine_written,
            "winner": self.winner,
            "ended_at": self.ended_at,
            "outcome_reason": self.outcome_reason,
            "weights": self.weights(),
            "policy": self.policy.to_json(),
        }


def start(
    deployment_id: str,
    prompt: str,
    control_version: int,
    candidate_versions: Sequence[int],
    policy: CanaryPolicy,
    *,
    actor: str,
    now: float,
    requires_approval: bool | None = None,
    machine_written: bool | None = None,
    reason: str = "",
) -> Decision:
    """Return the ``deployment.started`` event for a new deployment of 1-3 candidates.

    ``requires_approval`` defaults to the policy's gate before the first step;
    ``machine_written`` defaults to whether promptd itself (not an admin) starts it.
    Raises ``ValueError`` for a bad number of candidates.
    """
    del now  # the event's own recorded time becomes started_at when it is folded
    if not 1 <= len(candidate_versions) <= len(CANDIDATE_ARMS):
        raise ValueError(f"a deployment has 1 to 3 candidates, got {len(candidate_versions)}")
    names = CANDIDATE_ARMS[: len(candidate_versions)]
    arms = [Arm(CONTROL, control_version)] + [
        Arm(name, version) for name, version in zip(names, candidate_versions, strict=True)
    ]
    gated = policy.approval_before_start if requires_approval is None else requires_approval
    written_by_machine = actor == "promptd" if machine_written is None else machine_written
    versions = ", ".join(f"v{v}" for v in candidate_versions)
    return decision(
        "deployment.started",
        deployment_id,
        actor=actor,
        reason=reason or f"canary of {versions} against v{control_version}",
        prompt=prompt,
        arms=[{"name": a.name, "version": a.version} for a in arms],
        policy=policy.to_json(),
        requires_approval=gated,
        machine_written=written_by_machine,
    )


def evolve(
    state: DeploymentState | None, event_type: str, payload: Mapping[str, Any], at: float
) -> DeploymentState | None:
    """Return the state after the event recorded at ``at``; unrelated events change nothing.

    ``state`` is None before ``deployment.started``; it stays None for any other event.
    """
    if event_type == "deployment.started":
        return state if state is not None else _started(payload, at)
    if state is None or payload.get("deployment_id") != state.deployment_id:
        return state
    apply = _FOLDS.get(event_type)
    if apply is None:
        return state
    after = apply(state, payload, at)
    return state if after is None else replace(after, last_changed_at=at)


def fold(events: Sequence[tuple[str, Mapping[str, Any], float]]) -> DeploymentState | None:
    """Return the state after folding ``(event_type, payload, at)`` triples in log order."""
    state: DeploymentState | None = None
    for event_type, payload, at in events:
        state = evolve(state, event_type, payload, at)
    return state


Payload = Mapping[str, Any]
Next = DeploymentState | None  # None: the event does not apply in this phase


def _started(payload: Mapping[str, Any], at: float) -> DeploymentState:
    arms = tuple(Arm(str(a["name"]), int(a["version"])) for a in payload["arms"])
    policy = CanaryPolicy.model_validate(payload["policy"])
    gated = bool(payload.get("requires_approval", False))
    state = DeploymentState(
        deployment_id=str(payload["deployment_id"]),
        prompt=str(payload["prompt"]),
        arms=arms,
        policy=policy,
        phase=Phase.PENDING_APPROVAL if gated else Phase.RUNNING,
        step_index=0,
        step_started_at=at,
        started_at=at,
        machine_written=bool(payload.get("machine_written", True)),
        last_changed_at=at,
    )
    bucket_ranges(state.weights_at(policy.last_step))  # the full split must fit the layout
    return state


def _approved(state: DeploymentState, payload: Payload, at: float) -> Next:
    if state.phase == Phase.PENDING_APPROVAL:
        # The clock of the first step starts when traffic does, not when it was proposed;
        # so does a stratum (before approval everything was served by control).
        return replace(
            state, phase=Phase.RUNNING, step_started_at=at, started_at=at,
            stratum_steps=(*state.stratum_steps, state.step_index),
        )
    if state.phase == Phase.AWAITING_PROMOTION and state.winner is not None:
        return _ended(state, Phase.PROMOTED, payload, at, winner=state.winner)
    return None


def _stepped(state: DeploymentState, payload: Payload, at: float) -> Next:
    if state.phase not in (Phase.RUNNING, Phase.PAUSED):
        return None
    target = int(payload["step_index"])
    if target <= state.step_index or target > state.policy.last_step:
        return None  # a stale or duplicate step
    return replace(
        state, step_index=target, step_started_at=at,
        stratum_steps=(*state.stratum_steps, target),
    )


def _paused(state: DeploymentState, payload: Payload, at: float) -> Next:
    return replace(state, phase=Phase.PAUSED) if state.phase == Phase.RUNNING else None


def _resumed(state: DeploymentState, payload: Payload, at: float) -> Next:
    return replace(state, phase=Phase.RUNNING) if state.phase == Phase.PAUSED else None


def _arm_eliminated(state: DeploymentState, payload: Payload, at: float) -> Next:
    arm = str(payload["arm"])
    live = [a.name for a in state.live_candidates]
    if state.phase not in SERVING or arm not in live or len(live) < 2:
        return None  # the last candidate is never eliminated: that is a rollback
    after = replace(
        state,
        eliminated=(*state.eliminated, arm),
        eliminated_in_step=(*state.eliminated_in_step, (arm, state.step_index)),
        stratum_steps=(*state.stratum_steps, state.step_index),
    )
    if arm == state.winner:
        # The arm held for promotion approval turned out harmful: back to the race.
        after = replace(after, phase=Phase.RUNNING, winner=None)
    return after


def _awaiting(state: DeploymentState, payload: Payload, at: float) -> Next:
    winner = str(payload["winner"])
    if state.phase != Phase.RUNNING or winner not in {a.name for a in state.live_candidates}:
        return None
    return replace(state, phase=Phase.AWAITING_PROMOTION, winner=winner)


def _promoted(state: DeploymentState, payload: Payload, at: float) -> Next:
    winner = str(payload["winner"])
    if state.phase not in SERVING or winner not in {a.name for a in state.live_candidates}:
        return None
    return _ended(state, Phase.PROMOTED, payload, at, winner=winner)


def _rolled_back(state: DeploymentState, payload: Payload, at: float) -> Next:
    if state.is_terminal:
        return None
    return _ended(state, Phase.ROLLED_BACK, payload, at, winner=None)


def _rejected(state: DeploymentState, payload: Payload, at: float) -> Next:
    if state.phase not in (Phase.PENDING_APPROVAL, Phase.AWAITING_PROMOTION):
        return None
    return _ended(state, Phase.ROLLED_BACK, payload, at, winner=None)


def _superseded(state: DeploymentState, payload: Payload, at: float) -> Next:
    if state.is_terminal:
        return None
    return _ended(state, Phase.SUPERSEDED, payload, at, winner=None)


def _ended(
    state: DeploymentState,
    phase: Phase,
    payload: Mapping[str, Any],
    at: float,
    *,
    winner: str | None,
) -> DeploymentState:
    reason = str(payload.get("reason", ""))
    return replace(state, phase=phase, winner=winner, ended_at=at, outcome_reason=reason)


_FOLDS = {
    "deployment.approved": _approved,
    "approval.granted": _approved,
    "deployment.stepped": _stepped,
    "deployment.paused": _paused,
    "deployment.resumed": _resumed,
    "deployment.arm_eliminated": _arm_eliminated,
    "deployment.awaiting_promotion": _awaiting,
    "deployment.promoted": _promoted,
    "deployment.rolled_back": _rolled_back,
    "deployment.rejected": _rejected,
    "deployment.superseded": _superseded,
}

EVENT_TYPES = ("deployment.started", *_FOLDS)
