"""The canary's "decide" half: from a deployment's state and statistics to the next event.

``decide`` is the analysis tick for one deployment, ``decide_many`` the same for every
running deployment at once (one vectorised evaluation; the scheduler's job calls it);
``command`` is what an admin asks for. All are pure: they return a ``Decision`` (an event
for the service to append, with its reason and the statistics behind it) and never touch
the clock, the log or the network.

Rules, in order of precedence (DESIGN.md section 6):

1. sample-ratio mismatch in the current step: the data cannot be trusted, roll back;
2. harm: an arm shown worse than control beyond a tolerance on any watched metric (Holm
   across metrics) is eliminated, or rolls the deployment back if it is the last arm;
3. while paused or awaiting promotion nothing moves forward (the safety rules above keep
   running, because candidates still serve traffic);
4. with several arms, an arm shown worse than the best on the primary metric (Holm across
   the pairs) is eliminated;
5. a step in which every live arm has its minimum samples and time advances;
6. at the last step, arms whose primary bound clears the promotion boundary qualify; the
   policy's objective picks the winner, which is promoted (or awaits approval);
7. nothing qualified and every arm reached the maximum samples: the policy's inconclusive
   action (by default, roll back machine-written candidates: no benefit was shown).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from analytics.srm import SrmResult
from deploy.analysis import Bound, Check, SrmInput, evaluate, holm_reject, srm_many
from deploy.assignment import CONTROL
from deploy.commands import COMMANDS, CommandName, command
from deploy.decision import AUTOMATIC_ACTOR, Decision, TransitionError, decision
from deploy.rules import (
    History,
    best_arm,
    elimination_checks,
    harm_checks,
    objective,
    promotion_check,
    srm_input,
    step_complete,
)
from deploy.state import TERMINAL, DeploymentState, Phase
from deploy.stats import StepStats

__all__ = [
    "COMMANDS",
    "CommandName",
    "Decision",
    "TransitionError",
    "command",
    "decide",
    "decide_many",
]


def decide(state: DeploymentState, stats: StepStats, now: float) -> Decision:
    """Return the decision of one analysis tick: an event with its evidence, or no change."""
    return decide_many([(state, stats)], now)[0]


def decide_many(
    deployments: Sequence[tuple[DeploymentState, StepStats]], now: float
) -> list[Decision]:
    """Return ``decide`` for every (state, stats) pair, in order, evaluated in one batch."""
    ticks = [_plan(History(state, stats)) for state, stats in deployments]
    srm = srm_many([t.srm for t in ticks])
    # Phase 1: harm and promotion checks of every arm against control.
    _attach(ticks, lambda t: [*t.harm_checks(), *t.promotion.values()], _Tick.take_phase_one)
    # Holm within each (deployment, arm) family of harm checks.
    families = [(t, arm) for t in ticks for arm in t.harm]
    rejects = holm_reject(
        [[b.p_value for b in t.harm_bounds[arm]] for t, arm in families],
        [t.state.policy.alpha for t, _ in families],
    )
    for (tick, arm), rejected in zip(families, rejects, strict=True):
        bounds = tick.harm_bounds[arm]
        tick.harmful[arm] = [b for b, r in zip(bounds, rejected, strict=True) if r]
    # Phase 2: with several arms, the others against the best so far; Holm across pairs.
    for tick in ticks:
        tick.plan_elimination()
    _attach(ticks, lambda t: t.elimination, _Tick.take_phase_two)
    rejects = holm_reject(
        [[b.p_value for b in t.elimination_bounds] for t in ticks],
        [t.state.policy.alpha for t in ticks],
    )
    return [
        _conclude(tick, result, rejected, now)
        for tick, result, rejected in zip(ticks, srm, rejects, strict=True)
    ]


def _attach(
    ticks: Sequence[_Tick],
    checks_of: Callable[[_Tick], list[Check]],
    take: Callable[[_Tick, list[Bound]], None],
) -> None:
    planned = [checks_of(t) for t in ticks]
    bounds = iter(evaluate([c for checks in planned for c in checks]))
    for tick, checks in zip(ticks, planned, strict=True):
        take(tick, [next(bounds) for _ in checks])


@dataclass
class _Tick:
    """One deployment's planned checks for this tick and, once evaluated, their bounds."""

    history: History
    active: bool
    srm: SrmInput | None = None
    harm: dict[str, list[Check]] = field(default_factory=dict)
    promotion: dict[str, Check] = field(default_factory=dict)
    elimination: list[Check] = field(default_factory=list)
    best: str | None = None
    harm_bounds: dict[str, list[Bound]] = field(default_factory=dict)
    promotion_bounds: dict[str, Bound] = field(default_factory=dict)
    elimination_bounds: list[Bound] = field(default_factory=list)
    harmful: dict[str, list[Bound]] = field(default_factory=dict)

    @property
    def state(self) -> DeploymentState:
        return self.history.state

    def harm_checks(self) -> list[Check]:
        return [c for checks in self.harm.values() for c in checks]

    def take_phase_one(self, bounds: list[Bound]) -> None:
        it = iter(bounds)
        self.harm_bounds = {arm: [next(it) for _ in checks] for arm, checks in self.harm.items()}
        self.promotion_bounds = {arm: next(it) for arm in self.promotion}

    def take_phase_two(self, bounds: list[Bound]) -> None:
        self.elimination_bounds = bounds

    def plan_elimination(self) -> None:
        if not self.active or self.state.phase != Phase.RUNNING:
            return
        metric = self.state.policy.primary_metric
        primary = {
            arm: bounds[0]
            for arm, bounds in self.harm_bounds.items()
            if bounds and bounds[0].check.metric == metric
        }
        self.best = best_arm(self.state, primary)
        if self.best is not None:
            self.elimination = elimination_checks(self.history, self.best)


def _plan(history: History) -> _Tick:
    state = history.state
    if state.phase in TERMINAL or state.phase == Phase.PENDING_APPROVAL:
        return _Tick(history, active=False)
    tick = _Tick(history, active=True, srm=srm_input(history))
    tick.harm = {a.name: harm_checks(history, a.name) for a in state.live_candidates}
    if state.phase == Phase.RUNNING and state.at_last_step:
        tick.promotion = {a.name: promotion_check(history, a.name) for a in state.live_candidates}
    return tick


def _conclude(
    tick: _Tick, srm: SrmResult | None, elimination_rejects: list[bool], now: float
) -> Decision:
    state, history = tick.state, tick.history
    if not tick.active:
        return _auto(state, None, f"nothing to analyse while {state.phase.value}", {})
    evidence: dict[str, Any] = {
        "phase": state.phase.value,
        "step_index": state.step_index,
        "step_percent": state.policy.steps[state.step_index],
        "weights": state.weights(),
        "step_age_seconds": now - state.step_started_at,
        "srm": _srm_json(tick, srm),
        "control": {
            "version": state.version_of(CONTROL),
            "samples": history.samples(CONTROL),
        },
        "arms": {
            arm: {
                "version": state.version_of(arm),
                "samples": history.samples(arm),
                "metrics": {b.check.metric: b.to_json() for b in tick.harm_bounds[arm]},
            }
            for arm in tick.harm
        },
    }
    if srm is not None and srm.enough_data and srm.p_value < state.policy.srm_tripwire:
        return _srm_rollback(state, srm, state.policy.srm_tripwire, evidence)

    harmed = {arm: found for arm, found in tick.harmful.items() if found}
    if harmed:
        return _harm(state, harmed, evidence)
    if state.phase != Phase.RUNNING:
        return _auto(state, None, f"no harm; {state.phase.value}, waiting for an admin", evidence)

    losers = [b for b, r in zip(tick.elimination_bounds, elimination_rejects, strict=True) if r]
    if losers:
        worst = min(losers, key=lambda b: b.p_value)
        evidence["elimination"] = {"loser": worst.check.arm, "best": tick.best, **worst.to_json()}
        reason = (
            f"{worst.check.arm} is worse than {tick.best} on {worst.check.metric}: "
            f"{worst.reading()}"
        )
        return _auto(
            state,
            "deployment.arm_eliminated",
            reason,
            evidence,
            arm=worst.check.arm,
            trigger="elimination",
        )

    complete, why = step_complete(history, now)
    if not complete:
        return _auto(state, None, f"collecting: {why}", evidence)
    forward = _forward(tick, why, evidence)
    if forward.event_type in _FORWARD and srm is not None and srm.mismatch:
        # Nothing advances or promotes on data whose split does not match the weights.
        return _srm_rollback(state, srm, state.policy.srm_threshold, evidence)
    return forward


_FORWARD = frozenset({"deployment.stepped", "deployment.promoted", "deployment.awaiting_promotion"})


def _forward(tick: _Tick, why: str, evidence: dict[str, Any]) -> Decision:
    state = tick.state
    if not state.at_last_step:
        target = state.step_index + 1
        return _auto(
            state,
            "deployment.stepped",
            f"no harm and {why}: step {state.step_index} -> {target}",
            evidence,
            from_step=state.step_index,
            step_index=target,
            step_percent=state.policy.steps[target],
            weights=state.weights_at(target, state.eliminated),
        )
    return _final(tick, evidence)


def _srm_rollback(
    state: DeploymentState, srm: SrmResult, threshold: float, evidence: dict[str, Any]
) -> Decision:
    reason = (
        f"sample-ratio mismatch in step {state.step_index} "
        f"(p={srm.p_value:.2g} < {threshold}): the data cannot be trusted"
    )
    return _auto(state, "deployment.rolled_back", reason, evidence, trigger="srm")


def _harm(
    state: DeploymentState, harmed: dict[str, list[Bound]], evidence: dict[str, Any]
) -> Decision:
    findings = "; ".join(
        f"{arm} on {b.check.metric}: {b.reading()}"
        for arm, bounds in harmed.items()
        for b in bounds
    )
    reason = f"harm beyond tolerance: {findings}"
    survivors = [a.name for a in state.live_candidates if a.name not in harmed]
    if not survivors:
        return _auto(state, "deployment.rolled_back", reason, evidence, trigger="harm")
    # One arm per tick, the most clearly harmful, so every change is its own event.
    loser = min(harmed, key=lambda arm: min(b.p_value for b in harmed[arm]))
    return _auto(state, "deployment.arm_eliminated", reason, evidence, arm=loser, trigger="harm")


def _final(tick: _Tick, evidence: dict[str, Any]) -> Decision:
    state, policy = tick.state, tick.state.policy
    scores: dict[str, float] = {}
    qualified: list[str] = []
    for arm, bound in tick.promotion_bounds.items():
        scores[arm] = objective(state, tick.harm_bounds[arm])
        evidence["arms"][arm]["promotion"] = {**bound.to_json(), "qualifies": bound.rejects}
        evidence["arms"][arm]["objective"] = scores[arm]
        if bound.rejects:
            qualified.append(arm)
    what = "an improvement" if policy.require_improvement else "non-inferior"
    metric = policy.primary_metric
    if qualified:
        winner = max(qualified, key=lambda arm: scores[arm])
        reading = tick.promotion_bounds[winner].reading()
        reason = f"{winner} shown {what} on {metric} at the last step: {reading}"
        trigger = "improvement" if policy.require_improvement else "non_inferior"
        return _promotion(state, winner, reason, evidence, trigger=trigger)

    saturated = all(tick.history.samples(arm) >= policy.max_samples_per_arm for arm in scores)
    if not saturated:
        return _auto(state, None, f"at the last step; not yet shown {what}", evidence)
    action = policy.inconclusive_action(state.machine_written)
    evidence["inconclusive_action"] = action
    reason = f"inconclusive at {policy.max_samples_per_arm} samples per arm: not shown {what}"
    if action == "rollback":
        return _auto(state, "deployment.rolled_back", reason, evidence, trigger="inconclusive")
    best = max(scores, key=lambda arm: scores[arm])
    if action == "hold":
        return _auto(
            state,
            "deployment.awaiting_promotion",
            f"{reason}; holding {best} for an admin",
            evidence,
            winner=best,
            version=state.version_of(best),
            trigger="inconclusive",
        )
    return _promotion(state, best, reason, evidence, trigger="inconclusive")


def _promotion(
    state: DeploymentState, winner: str, reason: str, evidence: dict[str, Any], *, trigger: str
) -> Decision:
    gated = state.policy.approval_before_promotion
    return _auto(
        state,
        "deployment.awaiting_promotion" if gated else "deployment.promoted",
        f"{reason}; waiting for promotion approval" if gated else reason,
        evidence,
        winner=winner,
        version=state.version_of(winner),
        full=False,
        trigger=trigger,
    )


def _srm_json(tick: _Tick, result: SrmResult | None) -> dict[str, Any]:
    item = tick.srm
    body: dict[str, Any] = {
        "observed": dict(zip(item.arms, item.observed, strict=True)),
        "expected_share": dict(zip(item.arms, item.weights, strict=True)),
        "tested": result is not None,
    }
    if result is not None:
        body.update(
            statistic=result.statistic if math.isfinite(result.statistic) else None,
            p=result.p_value,
            mismatch=result.mismatch,
            enough_data=result.enough_data,
        )
    return body


def _auto(
    state: DeploymentState,
    event_type: str | None,
    reason: str,
    evidence: dict[str, Any],
    **fields: Any,
) -> Decision:
    return decision(
        event_type,
        state.deployment_id,
        actor=AUTOMATIC_ACTOR,
        reason=reason,
        evidence=evidence,
        **fields,
    )
