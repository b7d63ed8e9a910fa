"""From arm moments to a difference estimate and its standard error, optionally
post-stratified across ramp steps.

Why stratify: a canary's weights change between steps (5% -> 25% -> 50%) while the metric
drifts (time of day, traffic mix). Pooling all candidate data against all control data then
compares mostly-late candidate traffic with mostly-early control traffic, which is biased.
Comparing within each step and weighting the step differences by the step's sample size
removes that bias; the variance is the weighted sum of the step variances.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from analytics.hypotheses import MetricKind
from analytics.moments import Moments


@dataclass(frozen=True, slots=True)
class Difference:
    """A (possibly post-stratified) estimate of candidate - control, with what backs it."""

    estimate: float
    se: float  # standard error of ``estimate``; 0.0 when the data show no variation at all
    n: int  # total observations in the strata used (both arms)
    n_control: int
    n_candidate: int
    mean_control: float  # post-stratified means, for effect sizes and readings
    mean_candidate: float
    pooled_variance: float  # per-observation variance pooled within strata, for Cohen's d


def check_proportion(moments: Moments, arm: str) -> None:
    """Raise ``ValueError`` unless ``moments`` can describe 0/1 observations."""
    s = moments.total
    integral = abs(s - round(s)) < 1e-6 and abs(moments.total_sq - s) < 1e-6
    if not (0.0 <= s <= moments.n and integral):
        raise ValueError(
            f"{arm}: moments do not describe 0/1 data (n={moments.n}, total={s}, "
            f"total_sq={moments.total_sq}); a proportion needs total == total_sq <= n"
        )


def arm_variance(moments: Moments, kind: MetricKind) -> float:
    """Return the per-observation variance of one arm used for standard errors.

    Proportions use the MLE ``p (1 - p)``. An arm with all successes or none would have
    zero variance and make any difference look certain (a candidate that fails every time
    against a control that never fails), so such an arm uses the variance of
    ``(x + 1/2) / (n + 1)`` instead. Means use the unbiased sample variance.
    """
    if kind == "proportion":
        successes = round(moments.total)
        if 0 < successes < moments.n:
            p = moments.total / moments.n
        else:
            p = (successes + 0.5) / (moments.n + 1.0)
        return p * (1.0 - p)
    return moments.variance


def min_arm_size(kind: MetricKind) -> int:
    """Return the fewest observations an arm needs before its variance is estimable."""
    return 1 if kind == "proportion" else 2


def stratified_difference(
    strata: Sequence[tuple[Moments, Moments]], kind: MetricKind
) -> Difference | None:
    """Return the post-stratified difference over ``(control, candidate)`` strata.

    Strata where either arm is too small to estimate its variance are left out (they
    cannot be compared within the stratum); ``None`` when no stratum is usable.
    """
    minimum = min_arm_size(kind)
    used: list[tuple[Moments, Moments]] = []
    for control, candidate in strata:
        if kind == "proportion":
            check_proportion(control, "control")
            check_proportion(candidate, "candidate")
        if control.n >= minimum and candidate.n >= minimum:
            used.append((control, candidate))
    if not used:
        return None
    n_total = sum(c.n + t.n for c, t in used)
    estimate = var = mean_c = mean_t = pooled = 0.0
    for control, candidate in used:
        w = (control.n + candidate.n) / n_total
        v_c, v_t = arm_variance(control, kind), arm_variance(candidate, kind)
        estimate += w * (candidate.mean - control.mean)
        var += w * w * (v_c / control.n + v_t / candidate.n)
        mean_c += w * control.mean
        mean_t += w * candidate.mean
        if kind != "proportion":
            pooled += w * ((control.n - 1) * v_c + (candidate.n - 1) * v_t) / (
                control.n + candidate.n - 2
            )
    return Difference(
        estimate=estimate,
        se=math.sqrt(var),
        n=n_total,
        n_control=sum(c.n for c, _ in used),
        n_candidate=sum(t.n for _, t in used),
        mean_control=mean_c,
        mean_candidate=mean_t,
        pooled_variance=pooled,
    )
