"""What a canary tick compares, against which thresholds (DESIGN.md section 6), as glue.

Every comparison is an arm minus its base (control, or the best arm when eliminating) on
data within each step, post-stratified across steps, with always-valid one-sided bounds,
so looking at every tick does not inflate the error rates. This module only decides what
to compare and where the boundary lies; ``deploy.analysis`` evaluates the comparisons with
``analytics``; ``deploy.canary`` turns the outcomes into a decision.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from analytics.moments import Moments
from deploy.analysis import Bound, Check, SrmInput
from deploy.assignment import CONTROL
from deploy.state import DeploymentState
from deploy.stats import METRICS, ArmStats, MetricName, StepStats

EMPTY = ArmStats()


class History:
    """One deployment's statistics, step by step up to the current one, for one tick.

    Built once per tick so every check reads the per-step moments it needs without
    walking the nested mappings again (a tick over many deployments is mostly this).
    """

    def __init__(self, state: DeploymentState, stats: StepStats) -> None:
        self.state = state
        self.stats = stats
        self.steps = sorted(step for step in stats if step <= state.step_index)
        policy = state.policy
        self.rails = {g.metric: g for g in policy.guardrails if g.enabled}
        self.watched: list[MetricName] = [
            policy.primary_metric,
            *[m for m in self.rails if m != policy.primary_metric],
        ]
        self._arms: dict[str, list[ArmStats]] = {}
        self._series: dict[tuple[str, MetricName], list[Moments]] = {}

    def arm(self, step: int, arm: str) -> ArmStats:
        """Return what ``arm`` did in ``step`` (empty if nothing was recorded)."""
        return self.stats.get(step, {}).get(arm, EMPTY)

    def series(self, arm: str, metric: MetricName) -> list[Moments]:
        """Return the arm's moments of ``metric``, one per step so far."""
        key = (arm, metric)
        found = self._series.get(key)
        if found is None:
            per_step = self._arms.get(arm)
            if per_step is None:
                per_step = self._arms[arm] = [self.arm(s, arm) for s in self.steps]
            found = self._series[key] = [stats.metric(metric) for stats in per_step]
        return found

    def strata(
        self, metric: MetricName, base: str, arm: str
    ) -> tuple[tuple[Moments, Moments], ...]:
        """Return (base, arm) moments of ``metric`` per step in which both have data."""
        return tuple(
            (left, right)
            for left, right in zip(self.series(base, metric), self.series(arm, metric), strict=True)
            if left.n and right.n
        )

    def samples(self, arm: str) -> int:
        """Return the arm's primary-metric sample count over all steps so far."""
        return sum(m.n for m in self.series(arm, self.state.policy.primary_metric))

    def pooled(self, arm: str, metric: MetricName) -> Moments:
        """Return the arm's moments of ``metric`` over all steps so far."""
        total = Moments()
        for moments in self.series(arm, metric):
            total = total + moments
        return total


def srm_input(history: History) -> SrmInput:
    """Return the current step's exposure counts and expected shares for the SRM check."""
    state = history.state
    step = state.step_index
    eliminated_before = [a for a, s in state.eliminated_in_step if s < step]
    weights = state.weights_at(step, eliminated_before)
    eliminated_now = {a for a, s in state.eliminated_in_step if s == step}
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


def watched_metrics(state: DeploymentState) -> list[MetricName]:
    """Return the primary metric followed by every enabled guardrail."""
    rails = [g.metric for g in state.policy.guardrails if g.enabled]
    return [state.policy.primary_metric, *[m for m in rails if m != state.policy.primary_metric]]


def harm_boundary(history: History, metric: MetricName) -> float | None:
    """Return the delta beyond which ``metric`` counts as harm (None: cannot be judged yet)."""
    policy = history.state.policy
    if metric == policy.primary_metric:
        tolerance = policy.primary_tolerance
    else:
        rail = history.rails[metric]
        tolerance = rail.tolerance
        if rail.relative:
            # Plug-in of control's pooled mean turns a relative tolerance into a delta.
            control = history.pooled(CONTROL, metric)
            if control.n == 0:
                return None
            tolerance *= abs(control.mean)
    return -tolerance if METRICS[metric].better == "higher" else tolerance


def worse_side(metric: MetricName) -> str:
    """Return the one-sided alternative meaning "worse": below when higher is better."""
    return "less" if METRICS[metric].better == "higher" else "greater"


def harm_checks(history: History, arm: str) -> list[Check]:
    """Return one check per watched metric: is ``arm`` worse than control beyond tolerance?"""
    checks = []
    for metric in history.watched:
        pairs = history.strata(metric, CONTROL, arm)
        if not pairs:
            continue
        null = harm_boundary(history, metric)
        if null is None:
            continue
        checks.append(_check(history.state, arm, CONTROL, metric, pairs, worse_side(metric), null))
    return checks


def promotion_check(history: History, arm: str) -> Check:
    """Return the check that ``arm``'s primary delta clears the promotion boundary.

    The boundary is minus the non-inferiority margin, or zero when the policy requires an
    improvement (signs flip for a lower-is-better primary metric).
    """
    policy = history.state.policy
    metric = policy.primary_metric
    margin = 0.0 if policy.require_improvement else policy.non_inferiority_margin
    higher = METRICS[metric].better == "higher"
    pairs = history.strata(metric, CONTROL, arm)
    side = "greater" if higher else "less"
    return _check(history.state, arm, CONTROL, metric, pairs, side, -margin if higher else margin)


def best_arm(state: DeploymentState, primary: dict[str, Bound]) -> str | None:
    """Return the arm with the best primary estimate against control (None: under two)."""
    sign = 1.0 if METRICS[state.policy.primary_metric].better == "higher" else -1.0
    scored = {arm: b.estimate for arm, b in primary.items() if b.enough_data}
    if len(scored) < 2:
        return None
    return max(scored, key=lambda arm: sign * scored[arm])


def elimination_checks(history: History, best: str) -> list[Check]:
    """Return, per other live arm, the check that it is worse than ``best`` on the primary."""
    state = history.state
    metric = state.policy.primary_metric
    return [
        _check(
            state,
            arm.name,
            best,
            metric,
            history.strata(metric, best, arm.name),
            worse_side(metric),
            0.0,
        )
        for arm in state.live_candidates
        if arm.name != best
    ]


def _check(
    state: DeploymentState,
    arm: str,
    base: str,
    metric: MetricName,
    pairs: tuple[tuple[Moments, Moments], ...],
    side: str,
    null: float,
) -> Check:
    policy = state.policy
    return Check(
        arm,
        base,
        metric,
        side,
        null,
        policy.alpha,
        policy.n_star,
        pairs,
        policy.min_samples_to_judge,
    )


def objective(state: DeploymentState, bounds: Sequence[Bound]) -> float:
    """Return the policy's weighted objective of an arm from its harm bounds' estimates.

    Each metric adds its weight times its delta against control, signed so that better is
    larger; the survivor among several qualifying arms maximises it.
    """
    policy = state.policy
    weights = {policy.primary_metric: policy.primary_weight}
    weights.update({g.metric: g.weight for g in policy.guardrails if g.enabled})
    score = 0.0
    for bound in bounds:
        weight = weights.get(bound.check.metric, 0.0)
        if weight and bound.enough_data and math.isfinite(bound.estimate):
            sign = 1.0 if METRICS[bound.check.metric].better == "higher" else -1.0
            score += weight * sign * bound.estimate
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
