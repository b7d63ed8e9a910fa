"""From arm moments to a difference estimate and its standard error, optionally
post-stratified across ramp steps.

Why stratify: a canary's weights change between steps (5% -> 25% -> 50%) while the metric
drifts (time of day, traffic mix). Pooling all candidate data against all control data then
compares mostly-late candidate traffic with mostly-early control traffic, which is biased.
Comparing within each step removes that bias, whatever weights then combine the steps.

Which weights: Cochran-Mantel-Haenszel's, ``w = n_control n_candidate / (n_control +
n_candidate)`` per stratum. They are the inverse-variance (precision) weights when the
per-observation variance is the same in every stratum and arm, so a 2.5% first step, whose
difference is noisy because the candidate saw few requests, counts for what it is worth
rather than for its share of traffic (which roughly doubled the variance). Unlike plug-in
inverse variances they depend on the sample sizes only, never on the outcomes, so they
cannot favour a stratum whose variance happens to look small (a proportion near 0 or 1).

``4 * sum(w)`` is the *effective* total sample size: the size of one evenly split
comparison with the same precision (exactly the total for an even split). Confidence
sequences are tuned and evaluated on it, so steps with uneven splits count for the
information they carry, and the mixture behind ``analytics.sequential`` runs in the
information time it is valid in.
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
    effective_n: float  # 4 * sum of CMH weights: the evenly split size of equal precision
    n_control: int
    n_candidate: int
    mean_control: float  # post-stratified means, for effect sizes and readings
    mean_candidate: float
    pooled_variance: float  # per-observation variance pooled within strata, for Cohen's d


def check_proportion(moments: Moments, arm: str) -> None:
    """Raise ``ValueError`` unless ``moments`` can describe 0/1 observations."""
    s, n = moments.total, moments.n
    integral = abs(s - round(s)) < 1e-6
    # Of 0/1 data with s ones, m2 = s (n - s) / n; Welford's updates add rounding only.
    spread = abs(moments.m2 - (s * (n - s) / n if n else 0.0)) <= 1e-6 * max(1.0, n)
    if not (0.0 <= s <= n and integral and spread):
        raise ValueError(
            f"{arm}: moments do not describe 0/1 data (n={n}, total={s}, m2={moments.m2}); "
            "a proportion needs an integral total <= n and m2 == total (n - total) / n"
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
    sizes = [c.n * t.n / (c.n + t.n) for c, t in used]
    weight_sum = sum(sizes)
    estimate = var = mean_c = mean_t = pooled = 0.0
    for (control, candidate), size in zip(used, sizes, strict=True):
        w = size / weight_sum
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
        n=sum(c.n + t.n for c, t in used),
        effective_n=4.0 * weight_sum,
        n_control=sum(c.n for c, _ in used),
        n_candidate=sum(t.n for _, t in used),
        mean_control=mean_c,
        mean_candidate=mean_t,
        pooled_variance=pooled,
    )
