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
from functools import lru_cache

from analytics.planning import AlphaSplit, split_alpha
from deploy.analysis import METRIC_INDEX, CheckTable, Results, SrmInput
from deploy.assignment import CONTROL
from deploy.policy import harm_weights as weights_for
from deploy.state import DeploymentState
from deploy.stats import METRICS, ArmStats, MetricName, StepStats

EMPTY = ArmStats()


class History:
    """One deployment's statistics, stratum by stratum up to the current one, for one tick.

    Sums over strata come from the tick's ``StatsCube`` (``attach``), not from Python loops.
    """

    __slots__ = (
        "_boundaries", "_control_mean", "_control_n", "_exposed", "_samples", "_step",
        "alphas", "arm_index", "arm_names", "by_stratum", "index", "position", "primary",
        "state", "stats", "strata",
    )  # fmt: skip

    def __init__(self, state: DeploymentState, stats: StepStats, index: int = 0) -> None:
        self.state = state
        self.stats = stats
        self.index = index  # the deployment's position in this tick's StatsCube
        current = state.stratum
        self.strata = sorted(s for s in stats if s <= current)
        self.by_stratum = [stats[s] for s in self.strata]
        # Where the current stratum sits in ``strata`` (-1: no data in it yet).
        self.position = len(self.strata) - 1 if self.strata and self.strata[-1] == current else -1
        self.arm_names = state.arm_names
        self.arm_index = state.arm_index
        policy = state.policy
        self.alphas: AlphaSplit = _alpha_split(
            policy.alpha, len(self.arm_names) - 1, policy.nulls_overlap
        )
        self.primary = METRIC_INDEX[policy.primary_metric]
        self._samples: list[float] = []
        self._step: list[float] = []
        self._control_n: list[float] = []
        self._control_mean: list[float] = []
        self._exposed: list[list[float]] = []
        self._boundaries: tuple[list[MetricName], list[str], list[float]] | None = None

    def in_current_step(self) -> list[bool]:
        """Return, per entry of ``strata``, whether it belongs to the current step."""
        steps, now = self.state.stratum_steps, self.state.step_index
        return [steps[s] == now if s < len(steps) else False for s in self.strata]

    def attach(
        self,
        samples: list[float],
        step_samples: list[float],
        control_n: list[float],
        control_mean: list[float],
        exposed: list[list[float]],
    ) -> None:
        """Return nothing; take this deployment's sums from the tick's cube: per arm the
        primary metric's observations over all strata and within the current step, per
        metric control's observations and pooled mean, per arm the current stratum's
        exposures (``StatsCube.summary``)."""
        self._samples, self._step, self._exposed = samples, step_samples, exposed
        self._control_n, self._control_mean = control_n, control_mean

    @property
    def harm_boundaries(self) -> tuple[list[MetricName], list[str], list[float]]:
        """Return ``harm_boundaries(self)``, computed once per tick (same for every arm)."""
        if self._boundaries is None:
            self._boundaries = harm_boundaries(self)
        return self._boundaries

    def arm(self, stratum: int, arm: str) -> ArmStats:
        """Return what ``arm`` did in ``stratum`` (empty if nothing was recorded)."""
        return self.stats.get(stratum, {}).get(arm, EMPTY)

    def samples(self, arm: str) -> int:
        """Return the arm's primary-metric sample count over all strata so far."""
        return int(self._samples[self.arm_index[arm]])

    def step_samples(self, arm: str) -> int:
        """Return the arm's primary-metric samples in the current step (all its strata)."""
        return int(self._step[self.arm_index[arm]])

    def control_mean(self, metric: MetricName) -> float | None:
        """Return control's mean of ``metric`` over all strata so far (None: no data)."""
        m = METRIC_INDEX[metric]
        return self._control_mean[m] if self._control_n[m] else None

    def exposures(self, arm: str) -> list[float]:
        """Return [subjects, assignments, executions] of the arm in the current stratum."""
        return self._exposed[self.arm_index[arm]]  # floats holding whole counts


@lru_cache(maxsize=64)
def _alpha_split(alpha: float, candidates: int, nulls_overlap: bool) -> AlphaSplit:
    # Every deployment of a tick asks; the answer depends on these three values only.
    return split_alpha(alpha, candidates=candidates, nulls_overlap=nulls_overlap)


def srm_input(history: History) -> SrmInput:
    """Return the current stratum's exposure counts and expected shares for the SRM check.

    The unit is what assignment randomises: distinct subjects when the statistics carry
    them; else assignments (the daemon assigned); else executions (local assignment by an
    older projection), which a returning subject clusters, so the check then over-alarms.
    """
    state = history.state
    arms, shares = state.live_arms
    counts = [history.exposures(a) for a in arms]
    subjects = [c[0] for c in counts]
    if any(subjects):
        unit, observed = 0, subjects
    else:
        assignments = [c[1] for c in counts]
        unit, observed = (1, assignments) if any(assignments) else (2, [c[2] for c in counts])
    policy = state.policy
    return SrmInput(arms, tuple(observed), shares, policy.srm_threshold,
                    policy.srm_min_count, _UNITS[unit])


_UNITS = ("subjects", "assignments", "executions")


def harm_boundaries(history: History) -> tuple[list[MetricName], list[str], list[float]]:
    """Return the watched metrics with the side meaning "worse" and the harm boundary.

    The boundary is the delta beyond which a metric counts as harm: minus the tolerance
    when higher is better, plus it otherwise. A relative tolerance becomes a delta through
    control's pooled mean (a plug-in); without control data that metric waits.
    """
    metrics, sides, nulls, relative = history.state.policy.harm_template
    if not relative:
        return metrics, sides, nulls
    scales = [history.control_mean(metrics[i]) for i in relative]
    if None in scales:
        # A relative tolerance without control data yet: that metric waits.
        scale_of = dict(zip(relative, scales, strict=True))
        kept: tuple[list[MetricName], list[str], list[float]] = ([], [], [])
        for i, metric in enumerate(metrics):
            scale = scale_of.get(i, 1.0)
            if scale is not None:
                kept[0].append(metric)
                kept[1].append(sides[i])
                kept[2].append(nulls[i] * abs(scale))
        return kept
    scaled = list(nulls)
    for i, scale in zip(relative, scales, strict=True):
        scaled[i] *= abs(scale)  # type: ignore[arg-type]
    return metrics, sides, scaled


def harm_weights(history: History, metrics: list[MetricName]) -> list[float]:
    """Return the weighted-Holm weights of an arm's harm checks, in ``metrics`` order.

    The primary metric holds ``harm_primary_share`` of the arm's harm alpha and the
    guardrails split the rest evenly; without guardrails the primary holds all of it.
    """
    policy = history.state.policy
    if metrics is policy.harm_template[0]:
        return policy.harm_weights
    return weights_for(policy.primary_metric, policy.harm_primary_share, metrics)


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
    """Return the positions of checks that one live candidate differs from another.

    Every pair of live candidates gets one two-sided sequence at ``alpha / (k (k - 1))``,
    for the ``k`` candidates the deployment started with: its two sides are the two
    ordered claims "a worse than b" and "b worse than a", so every ordered pair is tested
    and which arm looks best is never chosen from the data; the union over the
    ``k (k - 1) / 2`` pairs spends the selection budget ``alpha / 2``. Eliminations that
    shrink the field only drop pairs. ``selection_loser`` names the arm shown worse.
    """
    metric = history.state.policy.primary_metric
    policy = history.state.policy
    start = len(table)
    live = [arm.name for arm in history.state.live_candidates]
    alpha = 2.0 * history.alphas.selection  # one two-sided check per unordered pair
    for i, arm in enumerate(live):
        for other in live[i + 1 :]:
            _add(history, table, arm, other, [metric], ["two-sided"], [0.0],
                 alpha=alpha, n_star=policy.promotion_n_star)
    return range(start, len(table))


def selection_loser(results: Results, i: int) -> tuple[str, str]:
    """Return (loser, winner) of a rejected selection check ``i``."""
    arm, base = results.table.pair(i)
    higher = METRICS[results.table.metric[i]].better == "higher"
    arm_worse = (results.estimate[i] < 0.0) == higher
    return (arm, base) if arm_worse else (base, arm)


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
