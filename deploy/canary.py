"""The canary's "decide" half: from a deployment's state and statistics to the next event.

``decide`` is the analysis tick for one deployment, ``decide_many`` the same for every
running deployment at once (one vectorised evaluation; the scheduler's job calls it);
``command`` is what an admin asks for. All are pure: they return a ``Decision`` (an event
for the service to append, with its reason and the statistics behind it) and never touch
the clock, the log or the network.

Rules, in order of precedence (DESIGN.md section 6):

1. sample-ratio mismatch in the current stratum (distinct subjects per arm against the
   weights): the data cannot be trusted, roll back;
2. harm: an arm shown worse than control beyond a tolerance on any watched metric
   (weighted Holm across metrics, the primary metric first) is eliminated, or rolls the
   deployment back if it is the last arm;
3. while paused or awaiting promotion nothing moves forward (the safety rules above keep
   running, because candidates still serve traffic);
4. with several arms, an arm shown worse than another live arm on the primary metric
   (every ordered pair tested, so picking "the best" after looking cannot inflate the
   error) is eliminated;
5. a step in which every live arm has its minimum samples and time advances;
6. at the last step, arms whose primary bound clears the promotion boundary qualify; the
   policy's objective picks the winner, which is promoted (or awaits approval);
7. nothing qualified and every arm reached the sample cap (by default the planned
   horizon): the policy's inconclusive action (by default, roll back machine-written
   candidates: no benefit was shown).

The alpha of each test, and why the family stays valid, is ``analytics.planning``'s.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from analytics.srm import SrmResult
from deploy.analysis import (
    Bound,
    CheckTable,
    Results,
    SrmInput,
    StatsCube,
    evaluate,
    holm_reject,
    srm_many,
)
from deploy.assignment import CONTROL
from deploy.commands import COMMANDS, CommandName, command
from deploy.decision import AUTOMATIC_ACTOR, Decision, TransitionError, decision
from deploy.rules import (
    History,
    harm_weights,
    objective,
    plan_promotion,
    plan_selection,
    selection_loser,
    srm_input,
    step_complete,
)
from deploy.state import SERVING, DeploymentState, Phase
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
    deployments: Sequence[tuple[DeploymentState, StepStats]],
    now: float,
    *,
    detail: bool = True,
) -> list[Decision]:
    """Return ``decide`` for every (state, stats) pair, in order, evaluated in one batch.

    With ``detail`` False a decision that changes nothing carries no evidence (its reason
    still says why): the canary job appends only changes and need not build ten thousand
    evidence rows a tick to throw them away. A decision with an event carries its full
    evidence either way.
    """
    with _collector_paused():
        return _decide_many(deployments, now, detail)


@contextmanager
def _collector_paused() -> Iterator[None]:
    # A tick builds tens of thousands of short-lived, acyclic objects (checks, evidence),
    # none of which the cycle collector could free. Left on, it runs a full collection
    # over the daemon's whole heap partway through, which costs more than the tick itself.
    # Pausing it is what timeit does for the same reason; the previous setting is restored.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _decide_many(
    deployments: Sequence[tuple[DeploymentState, StepStats]], now: float, detail: bool
) -> list[Decision]:
    histories = [History(state, stats, i) for i, (state, stats) in enumerate(deployments)]
    cube = StatsCube([h.by_stratum for h in histories], [h.arm_names for h in histories])
    width = cube.strata
    in_step = np.zeros((len(histories), width), dtype=bool)
    for i, history in enumerate(histories):
        marks = history.in_current_step()
        if any(marks):
            in_step[i, : len(marks)] = marks
    summary = cube.summary([h.primary for h in histories], in_step)
    for history, samples, step, control_n, control_mean, exposed in zip(
        histories, *summary, cube.exposures_at([h.position for h in histories]), strict=True
    ):
        history.attach(samples, step, control_n, control_mean, exposed)
    ticks = [_Tick(history) for history in histories]
    srm = srm_many([t.srm for t in ticks])
    # Every check of the tick in one table: harm and promotion against control, and the
    # selection pairs among candidates (none depends on another's outcome).
    table = CheckTable()
    for tick in ticks:
        tick.plan(table)
    results = evaluate(cube, table)
    # Weighted Holm within each (deployment, arm) family of harm checks.
    families = [(tick, arm, span) for tick in ticks for arm, span in tick.harm_at.items()]
    rejects = holm_reject(
        results.p_array,
        [span for _, _, span in families],
        [tick.history.alphas.harm for tick, _, _ in families],
        [tick.weights for tick, _, _ in families],
    )
    for (tick, arm, _), rejected in zip(families, rejects, strict=True):
        if rejected:
            tick.harmful[arm] = rejected
    reject = results.rejects
    for tick in ticks:
        # Each pair already runs at its Bonferroni share; a rejection is a conclusion.
        if tick.selection_at:
            tick.eliminated = [i for i in tick.selection_at if reject[i]]
    for tick in ticks:
        tick.results, tick.detail = results, detail
    return [_conclude(tick, results, result, now) for tick, result in zip(ticks, srm, strict=True)]


class _Tick:
    """One deployment in this tick: where its planned checks sit in the batch results."""

    __slots__ = (
        "active", "detail", "eliminated", "harm_at", "harmful", "history", "now",
        "promotion_at", "results", "selection_at", "srm", "srm_result", "state", "weights",
    )  # fmt: skip

    def __init__(self, history: History) -> None:
        self.history = history
        self.state = history.state
        self.active = self.state.phase in SERVING
        self.srm: SrmInput | None = srm_input(history) if self.active else None
        self.harm_at: dict[str, range] = {}  # positions in the results
        self.weights: list[float] = []  # weighted-Holm weights of each arm's harm checks
        self.promotion_at: dict[str, int] = {}
        self.selection_at = range(0)
        self.harmful: dict[str, list[int]] = {}  # harm checks Holm rejects, per arm
        self.eliminated: list[int] = []  # selection checks that reject
        self.results: Results | None = None
        self.detail = True
        self.srm_result: SrmResult | None = None
        self.now = 0.0

    def evidence(self, extra: dict[str, Any]) -> dict[str, Any]:
        """Return this deployment's full evidence, with a decision's ``extra`` merged in
        (its "arms" entries into each arm's)."""
        state, history, results = self.state, self.history, self.results
        assert results is not None
        alphas, step = history.alphas, state.step_index
        arms = {
            arm: {
                "version": state.version_of(arm),
                "samples": history.samples(arm),
                "metrics": results.rows(span),
            }
            for arm, span in self.harm_at.items()
        }
        for arm, more in extra.get("arms", {}).items():
            arms[arm].update(more)
        return {
            "phase": state.phase.value,
            "step_index": step,
            "stratum": state.stratum,
            "step_percent": state.policy.steps[step],
            "weights": state.weights(),
            "step_age_seconds": self.now - state.step_started_at,
            "srm": _srm_json(self, self.srm_result),
            "alpha": {
                "harm_per_arm": alphas.harm,
                "promotion_per_arm": alphas.promotion,
                "selection_per_pair": alphas.selection,
            },
            "control": {
                "version": state.version_of(CONTROL), "samples": history.samples(CONTROL),
            },
            **extra,
            "arms": arms,
        }

    def plan(self, table: CheckTable) -> None:
        """Return nothing; plan this deployment's checks into ``table``."""
        if not self.active:
            return
        history, state = self.history, self.state
        policy = state.policy
        metrics, sides, nulls = history.harm_boundaries
        index, at, least = history.arm_index, history.index, policy.min_samples_to_judge
        control = (CONTROL, 0)
        alpha, n_star = history.alphas.harm, policy.harm_n_star
        live = state.live_candidates
        for arm in live:
            name = arm.name
            self.harm_at[name] = table.add(
                at, (name, index[name]), control, metrics, sides, nulls,
                alpha=alpha, n_star=n_star, min_samples=least,
            )
        self.weights = harm_weights(history, metrics)
        if state.phase == Phase.RUNNING:
            if state.at_last_step:
                for arm in live:
                    self.promotion_at[arm.name] = plan_promotion(history, table, arm.name)
            if len(live) > 1:
                self.selection_at = plan_selection(history, table)


def _conclude(tick: _Tick, first: Results, srm: SrmResult | None, now: float) -> Decision:
    state, history = tick.state, tick.history
    if not tick.active:
        return _auto(tick, None, f"nothing to analyse while {state.phase.value}", {})
    # What a decision adds to the common evidence; ``_auto`` builds the rest only for a
    # decision that needs it.
    evidence: dict[str, Any] = {}
    tick.srm_result, tick.now = srm, now
    if srm is not None and srm.enough_data and srm.p_value < state.policy.srm_tripwire:
        return _srm_rollback(tick, srm, state.policy.srm_tripwire, evidence)

    if tick.harmful:
        harmed = {arm: [first.bound(i) for i in found] for arm, found in tick.harmful.items()}
        return _harm(tick, harmed, evidence)
    if state.phase != Phase.RUNNING:
        return _auto(tick, None, f"no harm; {state.phase.value}, waiting for an admin", evidence)

    if tick.eliminated:
        at = min(tick.eliminated, key=lambda i: first.p_value[i])
        loser, winner = selection_loser(first, at)
        bound = first.bound(at)
        evidence["elimination"] = {
            "loser": loser, "beaten_by": winner, "arm": bound.arm, "base": bound.base,
            **first.row(at),
        }
        reason = f"{loser} is worse than {winner} on {bound.metric}: {bound.arm} vs " \
            f"{bound.base}, {bound.reading()}"
        return _auto(
            tick,
            "deployment.arm_eliminated",
            reason,
            evidence,
            arm=loser,
            trigger="elimination",
        )

    complete, why = step_complete(history, now)
    if not complete:
        return _auto(tick, None, f"collecting: {why}", evidence)
    forward = _forward(tick, first, why, evidence)
    if forward.event_type in _FORWARD and srm is not None and srm.mismatch:
        # Nothing advances or promotes on data whose split does not match the weights.
        return _srm_rollback(tick, srm, state.policy.srm_threshold, evidence)
    return forward


_FORWARD = frozenset({"deployment.stepped", "deployment.promoted", "deployment.awaiting_promotion"})


def _forward(tick: _Tick, first: Results, why: str, evidence: dict[str, Any]) -> Decision:
    state = tick.state
    if not state.at_last_step:
        target = state.step_index + 1
        return _auto(
            tick,
            "deployment.stepped",
            f"no harm and {why}: step {state.step_index} -> {target}",
            evidence,
            from_step=state.step_index,
            step_index=target,
            step_percent=state.policy.steps[target],
            weights=state.weights_at(target, state.eliminated),
        )
    return _final(tick, first, evidence)


def _srm_rollback(
    tick: _Tick, srm: SrmResult, threshold: float, evidence: dict[str, Any]
) -> Decision:
    state = tick.state
    reason = (
        f"sample-ratio mismatch in step {state.step_index} "
        f"(p={srm.p_value:.2g} < {threshold}): the data cannot be trusted"
    )
    return _auto(tick, "deployment.rolled_back", reason, evidence, trigger="srm")


def _harm(tick: _Tick, harmed: dict[str, list[Bound]], evidence: dict[str, Any]) -> Decision:
    state = tick.state
    findings = "; ".join(
        f"{arm} on {b.metric}: {b.reading()}" for arm, bounds in harmed.items() for b in bounds
    )
    reason = f"harm beyond tolerance: {findings}"
    survivors = [a.name for a in state.live_candidates if a.name not in harmed]
    if not survivors:
        return _auto(tick, "deployment.rolled_back", reason, evidence, trigger="harm")
    # One arm per tick, the most clearly harmful, so every change is its own event.
    loser = min(harmed, key=lambda arm: min(b.p_value for b in harmed[arm]))
    return _auto(tick, "deployment.arm_eliminated", reason, evidence, arm=loser, trigger="harm")


def _final(tick: _Tick, first: Results, evidence: dict[str, Any]) -> Decision:
    state, policy = tick.state, tick.state.policy
    scores: dict[str, float] = {}
    qualified: list[str] = []
    for arm, i in tick.promotion_at.items():
        scores[arm] = objective(state, first, tick.harm_at[arm])
        evidence.setdefault("arms", {})[arm] = {
            "promotion": {**first.row(i), "qualifies": first.rejects[i]},
            "objective": scores[arm],
        }
        if first.rejects[i]:
            qualified.append(arm)
    what = "an improvement" if policy.require_improvement else "non-inferior"
    metric = policy.primary_metric
    if qualified:
        winner = max(qualified, key=lambda arm: scores[arm])
        reading = first.bound(tick.promotion_at[winner]).reading()
        reason = f"{winner} shown {what} on {metric} at the last step: {reading}"
        trigger = "improvement" if policy.require_improvement else "non_inferior"
        return _promotion(tick, winner, reason, evidence, trigger=trigger)

    cap = policy.sample_cap
    saturated = all(tick.history.samples(arm) >= cap for arm in scores)
    if not saturated:
        return _auto(tick, None, f"at the last step; not yet shown {what}", evidence)
    action = policy.inconclusive_action(state.machine_written)
    evidence["inconclusive_action"] = action
    reason = f"inconclusive at {cap} samples per arm: not shown {what}"
    if action == "rollback":
        return _auto(tick, "deployment.rolled_back", reason, evidence, trigger="inconclusive")
    best = max(scores, key=lambda arm: scores[arm])
    if action == "hold":
        return _auto(
            tick,
            "deployment.awaiting_promotion",
            f"{reason}; holding {best} for an admin",
            evidence,
            winner=best,
            version=state.version_of(best),
            trigger="inconclusive",
        )
    return _promotion(tick, best, reason, evidence, trigger="inconclusive")


def _promotion(
    tick: _Tick, winner: str, reason: str, evidence: dict[str, Any], *, trigger: str
) -> Decision:
    state = tick.state
    gated = state.policy.approval_before_promotion
    return _auto(
        tick,
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
        "unit": item.unit,
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
    tick: _Tick,
    event_type: str | None,
    reason: str,
    evidence: dict[str, Any],
    **fields: Any,
) -> Decision:
    state = tick.state
    if tick.active and (event_type is not None or tick.detail):
        evidence = tick.evidence(evidence)
    elif tick.active:
        evidence = {}
    return decision(
        event_type,
        state.deployment_id,
        actor=AUTOMATIC_ACTOR,
        reason=reason,
        evidence=evidence,
        **fields,
    )
