"""The canary's evidence as a picture: each candidate's effect against control, and the
boundaries it is judged against, for /metrics, the log and ``promptd deployment show``.

Computed by the canary decision's own functions (``deploy.rules.plan_harm`` and
``plan_promotion``, evaluated by ``deploy.analysis.evaluate`` on the same post-stratified
statistics), so a bound drawn here is the bound a tick reads: the harm rows equal the
``metrics`` of the tick's evidence, the promotion row its ``promotion`` entry. The promotion
bound is computed at every step, not only at the last one where it decides: it is the same
always-valid sequence, so an admin sees it approach the boundary before it matters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from deploy.analysis import CheckTable, Results, StatsCube, evaluate
from deploy.rules import History, plan_harm, plan_promotion
from deploy.state import SERVING, DeploymentState
from deploy.stats import StepStats

BOUNDS = ("lower", "estimate", "upper")


class Effect(NamedTuple):
    """One candidate minus control on one metric: estimate and always-valid bounds.

    A bound is None where the sequence gives none: a one-sided check bounds one side only
    (harm on a higher-is-better metric gives the upper bound, promotion the lower), and a
    check without enough data bounds nothing (its estimate is then the pooled difference,
    as the tick's evidence row says). The values are those of the tick's evidence rows.
    """

    arm: str
    metric: str
    estimate: float | None
    lower: float | None
    upper: float | None
    n_control: int
    n_candidate: int

    def value(self, bound: str) -> float | None:
        """Return the named bound ("lower", "estimate" or "upper")."""
        return {"lower": self.lower, "estimate": self.estimate, "upper": self.upper}[bound]


@dataclass(frozen=True)
class Evidence:
    """A serving deployment's effects and the boundaries (metric -> kind -> delta).

    ``kind`` is "harm" (a bound beyond it shows harm: rollback or elimination) or
    "promotion" (the primary metric's lower bound above it qualifies the arm at the last
    step). ``harm_rows`` and ``promotion_rows`` are the evidence rows as a tick writes them.
    """

    deployment_id: str
    prompt: str
    step_index: int
    effects: tuple[Effect, ...]
    boundaries: dict[str, dict[str, float]]

    def payload(self) -> dict[str, Any]:
        """Return the effects and boundaries as the log's ``canary.analysed`` records them."""
        effects: dict[str, dict[str, dict[str, Any]]] = {}
        for e in self.effects:
            effects.setdefault(e.arm, {})[e.metric] = {
                "estimate": e.estimate, "lower": e.lower, "upper": e.upper,
                "n_control": e.n_control, "n_candidate": e.n_candidate}
        return {"deployment_id": self.deployment_id, "prompt": self.prompt,
                "step_index": self.step_index, "effects": effects,
                "boundaries": self.boundaries}


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def evidence_of(pairs: Sequence[tuple[DeploymentState, StepStats]]) -> list[Evidence]:
    """Return the evidence of every serving deployment among ``pairs``, in order."""
    serving = [(s, st) for s, st in pairs if s.phase in SERVING]
    histories = [History(state, stats, i) for i, (state, stats) in enumerate(serving)]
    if not histories:
        return []
    cube = StatsCube([h.by_stratum for h in histories], [h.arm_names for h in histories])
    # Only control's pooled means matter here (relative tolerances become deltas through
    # them); the per-step sums a tick also attaches decide nothing drawn.
    no_step = np.zeros((len(histories), cube.strata), dtype=bool)
    summary = cube.summary([h.primary for h in histories], no_step)
    for history, samples, step, control_n, control_mean, exposed in zip(
        histories, *summary, cube.exposures_at([h.position for h in histories]), strict=True
    ):
        history.attach(samples, step, control_n, control_mean, exposed)
    table = CheckTable()
    planned = []
    for history in histories:
        arms = [arm.name for arm in history.state.live_candidates]
        planned.append([(arm, plan_harm(history, table, arm), plan_promotion(history, table, arm))
                        for arm in arms])
    results = evaluate(cube, table)
    return [_evidence(h.state, checks, table, results)
            for h, checks in zip(histories, planned, strict=True)]


def _evidence(state: DeploymentState, checks: list[tuple[str, range, int]], table: CheckTable,
              results: Results) -> Evidence:
    # Read straight from the result columns (the values ``Results.rows`` puts in a tick's
    # evidence rows): building those dicts cost more than the checks themselves.
    estimate, lower, upper = results.estimate, results.lower, results.upper
    n_control, n_candidate = results.n_control, results.n_candidate
    effects: list[Effect] = []
    boundaries: dict[str, dict[str, float]] = {}
    primary = state.policy.primary_metric
    for arm, harm, promotion in checks:
        for i in harm:
            metric = table.metric[i]
            boundaries.setdefault(metric, {})["harm"] = table.null[i]
            low, high = lower[i], upper[i]
            if metric == primary:
                # The other side of the primary metric is the promotion sequence's bound.
                low = low if low != -math.inf else lower[promotion]
                high = high if high != math.inf else upper[promotion]
            effects.append(Effect(arm, metric, _finite(estimate[i]), _finite(low),
                                  _finite(high), n_control[i], n_candidate[i]))
        boundaries.setdefault(primary, {})["promotion"] = table.null[promotion]
    return Evidence(state.deployment_id, state.prompt, state.step_index, tuple(effects),
                    boundaries)
