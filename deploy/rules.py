"""What a canary tick compares, against which thresholds (DESIGN.md section 6), as glue.

Every comparison is an arm minus its base (control, or the best arm when eliminating) on
data within each step, post-stratified across steps, with always-valid one-sided bounds,
so looking at every tick does not inflate the error rates. This module only decides what
to compare and where the boundary lies; ``deploy.analysis`` evaluates the comparisons with
``analytics``; ``deploy.canary`` turns the outcomes into a decision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from deploy.analysis import METRIC_INDEX, CheckTable, Results, SrmInput
from deploy.assignment import CONTROL
from deploy.state import DeploymentState
from deploy.stats import METRICS, ArmStats, MetricName, StepStats

EMPTY = ArmStats()


class History:
    """One deployment's statistics, step by step up to the current one, for one tick."""

    def __init__(self, state: DeploymentState, stats: StepStats, index: int = 0) -> None:
        self.state = state
        self.stats = stats
        self.index = index  # the deployment's position in this tick's StatsCube
        self.steps = sorted(step for step in stats if step <= state.step_index)
        self.by_step = [stats[step] for step in self.steps]
        self.arm_names = tuple(arm.name for arm in state.arms)
        self.arm_index = {name: i for i, name in enumerate(self.arm_names)}
        self._samples: dict[str, int] = {}
        self._boundaries: tuple[list[MetricName], list[str], list[float]] | None = None
        self._means: dict[tuple[str, MetricName], float | None] = {}

    @property
    def harm_boundaries(self) -> tuple[list[MetricName], list[str], list[float]]:
        """Return ``harm_boundaries(self)``, computed once per tick (same for every arm)."""
        if self._boundaries is None:
            self._boundaries = harm_boundaries(self)
        return self._boundaries

    def arm(self, step: int, arm: str) -> ArmStats:
        """Return what ``arm`` did in ``step`` (empty if nothing was recorded)."""
        return self.stats.get(step, {}).get(arm, EMPTY)

    def samples(self, arm: str) -> int:
        """Return the arm's primary-metric sample count over all steps so far."""
        found = self._samples.get(arm)
        if found is None:
            metric = self.state.policy.primary_metric
            found = self._samples[arm] = sum(
                by_arm[arm].metric(metric).n for by_arm in self.by_step if arm in by_arm
            )
        return found

    def count_samples(self, counts: list[list[float]]) -> None:
        """Return nothing; take every arm's sample count from a StatsCube's totals."""
        primary = METRIC_INDEX[self.state.policy.primary_metric]
        self._samples = {name: int(counts[i][primary]) for i, name in enumerate(self.arm_names)}

    def pooled_mean(self, arm: str, metric: MetricName) -> float | None:
        """Return the arm's mean of ``metric`` over all steps so far (None: no data)."""
        key = (arm, metric)
        if key not in self._means:
            moments = [by_arm[arm].metric(metric) for by_arm in self.by_step if arm in by_arm]
            n = sum(m.n for m in moments)
            self._means[key] = sum(m.total for m in moments) / n if n else None
        return self._means[key]


def srm_input(history: History) -> SrmInput:
    """Return the current step's exposure counts and expected shares for the SRM check."""
    state = history.state
    step = state.step_index
    eliminated_now = {a for a, s in state.eliminated_in_step if s == step}
    if eliminated_now:
        eliminated_before = [a for a, s in state.eliminated_in_step if s < step]
        weights = state.weights_at(step, eliminated_before)
    else:
        weights = state.weights()
    arms = [a for a, w in weights.items() if w > 0 and a not in eliminated_now]
    if eliminated_now:
        # Control's share changed part-way through this step when an arm left; only the
        # candidates that kept their share throughout can be checked against each other.
        arms = [a for a in arms if a != CONTROL]
    by_arm = [history.arm(step, a) for a in arms]
    # Assignments when the daemon sees them; with local SDK assignment it sees only
    # executions, which are then the exposure count.
    use_assignments = sum(s.assignments for s in by_arm) > 0
    return SrmInput(
        arms=tuple(arms),
        observed=tuple(s.assignments if use_assignments else s.executions for s in by_arm),
        weights=tuple(float(weights[a]) for a in arms),
        threshold=state.policy.srm_threshold,
        min_count=state.policy.srm_min_count,
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


def worse_side(metric: MetricName) -> str:
    """Return the one-sided alternative meaning "worse": below when higher is better."""
    return "less" if METRICS[metric].better == "higher" else "greater"


def plan_harm(history: History, table: CheckTable, arm: str) -> range:
    """Return the positions of the harm checks planned for ``arm``, one per watched metric."""
    metrics, sides, nulls = history.harm_boundaries
    return _add(history, table, arm, CONTROL, metrics, sides, nulls)


def plan_promotion(history: History, table: CheckTable, arm: str) -> int:
    """Return the position of the check that ``arm``'s primary delta clears promotion.

    The boundary is minus the non-inferiority margin, or zero when the policy requires an
    improvement (signs flip for a lower-is-better primary metric).
    """
    policy = history.state.policy
    metric = policy.primary_metric
    margin = 0.0 if policy.require_improvement else policy.non_inferiority_margin
    higher = METRICS[metric].better == "higher"
    side = "greater" if higher else "less"
    return _add(history, table, arm, CONTROL, [metric], [side], [-margin if higher else margin])[0]


def best_arm(state: DeploymentState, estimates: dict[str, float]) -> str | None:
    """Return the arm with the best primary estimate against control (None: under two)."""
    if len(estimates) < 2:
        return None
    sign = 1.0 if METRICS[state.policy.primary_metric].better == "higher" else -1.0
    return max(estimates, key=lambda arm: sign * estimates[arm])


def plan_elimination(history: History, table: CheckTable, best: str) -> range:
    """Return the positions of checks that each other live arm is worse than ``best``."""
    metric = history.state.policy.primary_metric
    start = len(table)
    for arm in history.state.live_candidates:
        if arm.name != best:
            _add(history, table, arm.name, best, [metric], [worse_side(metric)], [0.0])
    return range(start, len(table))


def _add(
    history: History,
    table: CheckTable,
    arm: str,
    base: str,
    metrics: list[MetricName],
    sides: list[str],
    nulls: list[float],
) -> range:
    policy = history.state.policy
    return table.add(
        history.index,
        (arm, history.arm_index[arm]),
        (base, history.arm_index[base]),
        metrics,
        sides,
        nulls,
        alpha=policy.alpha,
        n_star=policy.n_star,
        min_samples=policy.min_samples_to_judge,
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
        n = history.arm(state.step_index, arm).metric(policy.primary_metric).n
        if n < policy.min_samples_per_step:
            return False, f"{arm} has {n} of {policy.min_samples_per_step} samples in this step"
    return True, "minimum samples and time reached"
