"""What a canary tick compares, against which thresholds (DESIGN.md section 6), as glue.

Every comparison is an arm minus its base (control, or another candidate when selecting)
on data within each stratum, post-stratified across strata, with always-valid one-sided
bounds, so looking at every tick does not inflate the error rates. Each bound runs at the
alpha and tuning of its question (``analytics.planning``): harm tuned small, promotion and
selection tuned to the planned horizon. This module only decides what to compare and where
the boundary lies; ``deploy.analysis`` evaluates the comparisons with ``analytics``;
``deploy.canary`` turns the outcomes into a decision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from analytics.planning import AlphaSplit
from deploy.analysis import METRIC_INDEX, CheckTable, Results, SrmInput
from deploy.assignment import CONTROL
from deploy.state import DeploymentState
from deploy.stats import METRICS, ArmStats, MetricName, StepStats

EMPTY = ArmStats()


class History:
    """One deployment's statistics, stratum by stratum up to the current one, for one tick."""

    def __init__(self, state: DeploymentState, stats: StepStats, index: int = 0) -> None:
        self.state = state
        self.stats = stats
        self.index = index  # the deployment's position in this tick's StatsCube
        self.strata = sorted(s for s in stats if s <= state.stratum)
        self.by_stratum = [stats[s] for s in self.strata]
        self.arm_names = tuple(arm.name for arm in state.arms)
        self.arm_index = {name: i for i, name in enumerate(self.arm_names)}
        self.alphas: AlphaSplit = state.policy.alpha_split(len(state.candidates))
        self._samples: dict[str, int] = {}
        self._boundaries: tuple[list[MetricName], list[str], list[float]] | None = None
        self._means: dict[tuple[str, MetricName], float | None] = {}

    @property
    def harm_boundaries(self) -> tuple[list[MetricName], list[str], list[float]]:
        """Return ``harm_boundaries(self)``, computed once per tick (same for every arm)."""
        if self._boundaries is None:
            self._boundaries = harm_boundaries(self)
        return self._boundaries

    def arm(self, stratum: int, arm: str) -> ArmStats:
        """Return what ``arm`` did in ``stratum`` (empty if nothing was recorded)."""
        return self.stats.get(stratum, {}).get(arm, EMPTY)

    def step_samples(self, arm: str) -> int:
        """Return the arm's primary-metric samples in the current step (all its strata)."""
        metric = self.state.policy.primary_metric
        return sum(
            self.arm(s, arm).metric(metric).n
            for s in self.state.strata_of_step(self.state.step_index)
        )

    def samples(self, arm: str) -> int:
        """Return the arm's primary-metric sample count over all strata so far."""
        found = self._samples.get(arm)
        if found is None:
            metric = self.state.policy.primary_metric
            found = self._samples[arm] = sum(
                by_arm[arm].metric(metric).n for by_arm in self.by_stratum if arm in by_arm
            )
        return found

    def count_samples(self, counts: list[list[float]]) -> None:
        """Return nothing; take every arm's sample count from a StatsCube's totals."""
        primary = METRIC_INDEX[self.state.policy.primary_metric]
        self._samples = {name: int(counts[i][primary]) for i, name in enumerate(self.arm_names)}

    def pooled_mean(self, arm: str, metric: MetricName) -> float | None:
        """Return the arm's mean of ``metric`` over all strata so far (None: no data)."""
        key = (arm, metric)
        if key not in self._means:
            moments = [by_arm[arm].metric(metric) for by_arm in self.by_stratum if arm in by_arm]
            n = sum(m.n for m in moments)
            self._means[key] = sum(m.total for m in moments) / n if n else None
        return self._means[key]


def srm_input(history: History) -> SrmInput:
    """Return the current stratum's exposure counts and expected shares for the SRM check.

    The unit is what assignment randomises: distinct subjects when the statistics carry
    them; else assignments (the daemon assigned); else executions (local assignment by an
    older projection), which a returning subject clusters, so the check then over-alarms.
    """
    state = history.state
    weights = state.weights()
    arms = [a for a, w in weights.items() if w > 0]
    by_arm = [history.arm(state.stratum, a) for a in arms]
    if any(s.subjects for s in by_arm):
        unit, observed = "subjects", tuple(s.subjects for s in by_arm)
    elif any(s.assignments for s in by_arm):
        unit, observed = "assignments", tuple(s.assignments for s in by_arm)
    else:
        unit, observed = "executions", tuple(s.executions for s in by_arm)
    return SrmInput(
        arms=tuple(arms),
        observed=observed,
        weights=tuple(float(weights[a]) for a in arms),
        threshold=state.policy.srm_threshold,
        min_count=state.policy.srm_min_count,
        unit=unit,
    )


def harm_boundaries(history: History) -> tuple[list[MetricName], list[str], list[float]]:
    """Return the watched metrics with the side meaning "worse" and the harm boundary.

    The boundary is the delta beyond which a metric counts as harm: minus the tolerance
    when higher is better, plus it otherwise. A relative tolerance becomes a delta through
    control's pooled mean (a plug-in); without control data that metric waits.
    """
    metrics: list[MetricName] = []
    sides: list[str] = []
    nulls: list[float] = []
    for metric, tolerance, relative in history.state.policy.watched:
        if relative:
            control = history.pooled_mean(CONTROL, metric)
            if control is None:
                continue
            tolerance *= abs(control)
        higher = METRICS[metric].better == "higher"
        metrics.append(metric)
        sides.append("less" if higher else "greater")
        nulls.append(-tolerance if higher else tolerance)
    return metrics, sides, nulls


def harm_weights(history: History, metrics: list[MetricName]) -> list[float]:
    """Return the weighted-Holm weights of an arm's harm checks, in ``metrics`` order.

    The primary metric holds ``harm_primary_share`` of the arm's harm alpha and the
    guardrails split the rest evenly; without guardrails the primary holds all of it.
    """
    policy = history.state.policy
    rails = len(metrics) - 1
    share = policy.harm_primary_share if rails else 1.0
    rest = (1.0 - share) / rails if rails else 0.0
    # A zero weight would never be rejected; a guardrail keeps a sliver when share is 1.
    rest = max(rest, 1e-6)
    return [share if m == policy.primary_metric else rest for m in metrics]


def worse_side(metric: MetricName) -> str:
    """Return the one-sided alternative meaning "worse": below when higher is better."""
    return "less" if METRICS[metric].better == "higher" else "greater"


def plan_harm(history: History, table: CheckTable, arm: str) -> range:
    """Return the positions of the harm checks planned for ``arm``, one per watched metric.

    Each runs at the arm's whole harm alpha; weighted Holm then divides it (``harm_weights``).
    """
    metrics, sides, nulls = history.harm_boundaries
    policy = history.state.policy
    return _add(history, table, arm, CONTROL, metrics, sides, nulls,
                alpha=history.alphas.harm, n_star=policy.harm_n_star)


def plan_promotion(history: History, table: CheckTable, arm: str) -> int:
    """Return the position of the check that ``arm``'s primary delta clears promotion.

    The boundary is minus the non-inferiority margin, or zero when the policy requires an
    improvement (signs flip for a lower-is-better primary metric).
    """
    policy = history.state.policy
    metric = policy.primary_metric
    margin = policy.promotion_margin
    higher = METRICS[metric].better == "higher"
    side = "greater" if higher else "less"
    return _add(history, table, arm, CONTROL, [metric], [side], [-margin if higher else margin],
                alpha=history.alphas.promotion, n_star=policy.promotion_n_star)[0]


def plan_selection(history: History, table: CheckTable) -> range:
    """Return the positions of checks that one live candidate is worse than another.

    Every ordered pair, each at ``alpha / (2 k (k - 1))`` for the ``k`` candidates the
    deployment started with: which arm looks best is not chosen from the data, so the
    choice cannot inflate the error, and eliminations shrinking the field only drop pairs.
    """
    metric = history.state.policy.primary_metric
    policy = history.state.policy
    side = worse_side(metric)
    start = len(table)
    live = [arm.name for arm in history.state.live_candidates]
    for arm in live:
        for other in live:
            if other != arm:
                _add(history, table, arm, other, [metric], [side], [0.0],
                     alpha=history.alphas.selection, n_star=policy.promotion_n_star)
    return range(start, len(table))


def _add(
    history: History,
    table: CheckTable,
    arm: str,
    base: str,
    metrics: list[MetricName],
    sides: list[str],
    nulls: list[float],
    *,
    alpha: float,
    n_star: float,
) -> range:
    return table.add(
        history.index,
        (arm, history.arm_index[arm]),
        (base, history.arm_index[base]),
        metrics,
        sides,
        nulls,
        alpha=alpha,
        n_star=n_star,
        min_samples=history.state.policy.min_samples_to_judge,
    )


def objective(state: DeploymentState, results: Results, indices: Iterable[int]) -> float:
    """Return the policy's weighted objective of an arm from its harm checks' estimates.

    Each metric adds its weight times its delta against control, signed so that better is
    larger; the survivor among several qualifying arms maximises it.
    """
    policy = state.policy
    weights = {policy.primary_metric: policy.primary_weight}
    weights.update({g.metric: g.weight for g in policy.guardrails if g.enabled})
    score = 0.0
    for i in indices:
        metric = results.table.metric[i]
        weight = weights.get(metric, 0.0)
        if weight and results.enough[i] and math.isfinite(results.estimate[i]):
            sign = 1.0 if METRICS[metric].better == "higher" else -1.0
            score += weight * sign * results.estimate[i]
    return score


def step_complete(history: History, now: float) -> tuple[bool, str]:
    """Return whether every live arm has its minimum samples and time in this step, and why."""
    state = history.state
    policy = state.policy
    elapsed = now - state.step_started_at
    if elapsed < policy.min_step_seconds:
        return (
            False,
            f"step {state.step_index} ran {elapsed:.0f}s of {policy.min_step_seconds:.0f}s",
        )
    for arm in [CONTROL, *[a.name for a in state.live_candidates]]:
        n = history.step_samples(arm)
        if n < policy.min_samples_per_step:
            return False, f"{arm} has {n} of {policy.min_samples_per_step} samples in this step"
    return True, "minimum samples and time reached"
