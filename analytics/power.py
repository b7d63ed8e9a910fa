"""Achieved power and required sample sizes, for fixed-horizon and sequential designs.

Sample sizes are per arm with an allocation ratio ``n_candidate = ratio * n_control``.
The fixed-horizon formulas are the textbook ones (and statsmodels'), so a plan made here
can be checked anywhere; the sequential ones size a canary step so that the confidence
sequence of ``analytics.sequential`` reaches the power at its horizon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import optimize, special

from analytics.hypotheses import Side, check_alpha, check_finite, check_side, normal_quantile
from analytics.sequential import check_n_star, multiplier


@dataclass(frozen=True, slots=True)
class SampleSize:
    """Observations needed per arm; ``exact_control`` is the unrounded solution."""

    n_control: int
    n_candidate: int
    exact_control: float

    @property
    def total(self) -> int:
        """Observations needed across both arms."""
        return self.n_control + self.n_candidate


def _check_power(power: float) -> float:
    power = float(power)
    if not 0.0 < power < 1.0:
        raise ValueError(f"power must lie in (0, 1), got {power!r}")
    return power


def _check_ratio(ratio: float) -> float:
    ratio = float(ratio)
    if not (math.isfinite(ratio) and ratio > 0.0):
        raise ValueError(f"ratio must be positive and finite, got {ratio!r}")
    return ratio


def _check_n(name: str, n: float) -> float:
    # NaN compares False with everything, so "n <= 0" alone would let it through and the
    # power would come back NaN instead of an error.
    n = float(n)
    if not math.isfinite(n):
        raise ValueError(f"{name} must be a finite sample size, got {n!r}")
    return n


def _check_rate(name: str, p: float) -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {p!r}")
    return p


def _sizes(exact: float, ratio: float) -> SampleSize:
    # Round up each arm separately: both must reach their share of the plan. The small
    # slack absorbs float noise such as 3841.0000000002.
    n_control = max(1, math.ceil(exact - 1e-9))
    return SampleSize(n_control, max(1, math.ceil(ratio * exact - 1e-9)), exact)


def sample_size_two_proportions(
    p_control: float,
    p_candidate: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    side: Side = "two-sided",
) -> SampleSize:
    """Return the per-arm sample size for the two-proportion z-test to detect
    ``p_candidate - p_control`` with the given power.

    Pooled variance under the null, unpooled under the alternative, and (for two-sided
    tests) the far tail ignored: Fleiss' formula without continuity correction, as
    statsmodels' ``samplesize_proportions_2indep_onetail``. 0.90 vs 0.88 needs 3,841.
    """
    alpha, power, side = check_alpha(alpha), _check_power(power), check_side(side)
    ratio = _check_ratio(ratio)
    p1, p2 = _check_rate("p_control", p_control), _check_rate("p_candidate", p_candidate)
    delta = p2 - p1
    if delta == 0.0:
        raise ValueError("p_control and p_candidate are equal: no sample size detects no effect")
    pooled = (p1 + ratio * p2) / (1.0 + ratio)
    sd_null = math.sqrt(pooled * (1 - pooled) * (1.0 + 1.0 / ratio))
    sd_alt = math.sqrt(p1 * (1 - p1) + p2 * (1 - p2) / ratio)
    z_alpha = normal_quantile(1 - alpha / 2) if side == "two-sided" else normal_quantile(1 - alpha)
    exact = ((z_alpha * sd_null + normal_quantile(power) * sd_alt) / delta) ** 2
    return _sizes(exact, ratio)


def power_two_proportions(
    p_control: float,
    p_candidate: float,
    n_control: float,
    n_candidate: float,
    *,
    alpha: float = 0.05,
    side: Side = "two-sided",
) -> float:
    """Return the power of the two-proportion z-test at these sample sizes (both tails
    counted for a two-sided test; the inverse of ``sample_size_two_proportions``)."""
    alpha, side = check_alpha(alpha), check_side(side)
    p1, p2 = _check_rate("p_control", p_control), _check_rate("p_candidate", p_candidate)
    n_control, n_candidate = _check_n("n_control", n_control), _check_n("n_candidate", n_candidate)
    if n_control <= 0 or n_candidate <= 0:
        raise ValueError("sample sizes must be positive")
    ratio = n_candidate / n_control
    pooled = (p1 + ratio * p2) / (1.0 + ratio)
    sd_null = math.sqrt(pooled * (1 - pooled) * (1.0 + 1.0 / ratio))
    sd_alt = math.sqrt(p1 * (1 - p1) + p2 * (1 - p2) / ratio)
    if sd_alt == 0.0:
        raise ValueError("both rates are 0 or 1: the test has no variance to work with")
    shift = (p2 - p1) * math.sqrt(n_control) / sd_alt
    crit = (normal_quantile(1 - alpha / 2) if side == "two-sided" else normal_quantile(1 - alpha))
    crit *= sd_null / sd_alt
    result = 0.0
    if side in ("two-sided", "greater"):
        result += float(special.ndtr(shift - crit))
    if side in ("two-sided", "less"):
        result += float(special.ndtr(-crit - shift))
    return result


def _t_power(
    delta: float, sd_control: float, sd_candidate: float, n_control: float, n_candidate: float,
    alpha: float, side: Side,
) -> float:
    v_c, v_t = sd_control**2 / n_control, sd_candidate**2 / n_candidate
    if sd_control == sd_candidate:
        df = n_control + n_candidate - 2.0  # the pooled t-test's reference distribution
    else:
        df = (v_c + v_t) ** 2 / (v_c**2 / (n_control - 1) + v_t**2 / (n_candidate - 1))
    ncp = delta / math.sqrt(v_c + v_t)
    # Imported here: scipy.stats takes half a second to load, and every canary policy
    # imports this module for its proportions' sample sizes, which never need it.
    from scipy import stats

    tail = alpha / 2 if side == "two-sided" else alpha
    result = 0.0
    if side in ("two-sided", "greater"):
        result += float(stats.nct.sf(stats.t.isf(tail, df), df, ncp))
    if side in ("two-sided", "less"):
        result += float(stats.nct.cdf(stats.t.ppf(tail, df), df, ncp))
    return result


def _check_sds(sd_control: float, sd_candidate: float | None) -> tuple[float, float]:
    sd_c = check_finite("sd_control", sd_control)
    sd_t = sd_c if sd_candidate is None else check_finite("sd_candidate", sd_candidate)
    if sd_c <= 0.0 or sd_t <= 0.0:
        raise ValueError("standard deviations must be positive")
    return sd_c, sd_t


def power_two_means(
    delta: float,
    sd_control: float,
    n_control: float,
    n_candidate: float,
    *,
    sd_candidate: float | None = None,
    alpha: float = 0.05,
    side: Side = "two-sided",
) -> float:
    """Return the power of the t-test to detect a difference of means ``delta``.

    Exact under normality through the noncentral t: with equal standard deviations the
    pooled t-test (as statsmodels' ``TTestIndPower``), otherwise Welch's test with the
    Welch-Satterthwaite degrees of freedom.
    """
    alpha, side = check_alpha(alpha), check_side(side)
    delta = check_finite("delta", delta)
    sd_c, sd_t = _check_sds(sd_control, sd_candidate)
    n_control, n_candidate = _check_n("n_control", n_control), _check_n("n_candidate", n_candidate)
    if n_control < 2 or n_candidate < 2:
        raise ValueError("the t-test needs at least two observations per arm")
    return _t_power(delta, sd_c, sd_t, n_control, n_candidate, alpha, side)


def sample_size_two_means(
    delta: float,
    sd_control: float,
    *,
    sd_candidate: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    side: Side = "two-sided",
) -> SampleSize:
    """Return the per-arm sample size for the t-test to detect a difference of means.

    Solves ``power_two_means`` for ``n_control`` (``n_candidate = ratio * n_control``),
    so the returned sizes reach the power and one fewer would not.
    """
    alpha, power, side = check_alpha(alpha), _check_power(power), check_side(side)
    ratio, delta = _check_ratio(ratio), check_finite("delta", delta)
    sd_c, sd_t = _check_sds(sd_control, sd_candidate)
    if delta == 0.0:
        raise ValueError("delta is zero: no sample size detects no effect")
    if (side == "greater" and delta < 0) or (side == "less" and delta > 0):
        raise ValueError(f"a {side!r} test cannot detect delta={delta}")

    def shortfall(n: float) -> float:
        return _t_power(delta, sd_c, sd_t, n, ratio * n, alpha, side) - power

    # Start from the normal approximation and bracket the t solution around it.
    z = normal_quantile(1 - alpha / 2) if side == "two-sided" else normal_quantile(1 - alpha)
    guess = (z + normal_quantile(power)) ** 2 * (sd_c**2 + sd_t**2 / ratio) / delta**2
    lo = max(2.0, 2.0 / ratio) + 1e-9
    hi = max(guess * 2.0, lo * 2.0)
    while shortfall(hi) < 0:
        hi *= 2.0
    if shortfall(lo) >= 0:
        return _sizes(lo, ratio)
    exact = optimize.brentq(shortfall, lo, hi, xtol=1e-10, rtol=1e-14)
    return _sizes(exact, ratio)


def sequential_sample_size(
    delta: float,
    sd_control: float,
    *,
    sd_candidate: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    ratio: float = 1.0,
    side: Side = "two-sided",
    n_star: float | None = None,
) -> SampleSize:
    """Return the per-arm horizon by which the confidence sequence excludes ``delta == 0``
    with at least the given power.

    Normal approximation at the horizon alone: the sequence may have crossed earlier
    (and the running intersection keeps that), so the true power is at least the target.
    For a proportion pass ``sd = sqrt(p (1 - p))`` of each arm.
    """
    alpha, power, side = check_alpha(alpha), _check_power(power), check_side(side)
    ratio, delta = _check_ratio(ratio), check_finite("delta", delta)
    sd_c, sd_t = _check_sds(sd_control, sd_candidate)
    n_star = check_n_star(n_star)
    if delta == 0.0:
        raise ValueError("delta is zero: no sample size detects no effect")
    if (side == "greater" and delta < 0) or (side == "less" and delta > 0):
        raise ValueError(f"a {side!r} test cannot detect delta={delta}")
    z_power = normal_quantile(power)

    def margin(n: float) -> float:
        se = math.sqrt(sd_c**2 / n + sd_t**2 / (ratio * n))
        m = multiplier(n * (1.0 + ratio), alpha=alpha, n_star=n_star, side=side)
        return abs(delta) / se - m - z_power

    lo, hi = 1.0, 2.0
    while margin(hi) < 0:
        lo, hi = hi, hi * 2.0
    exact = optimize.brentq(margin, lo, hi, xtol=1e-9) if margin(lo) < 0 else lo
    return _sizes(exact, ratio)
