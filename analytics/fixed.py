"""Fixed-horizon comparisons for reports and offline validation.

These are valid only when the sample size is fixed in advance and the data are looked at
once; a canary that re-runs them at every tick inflates its false-positive rate (see
``analytics.sequential`` for what to use instead). Everything works from ``Moments`` or
counts, never from raw events.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from analytics.hypotheses import Side, check_alpha, check_finite, check_side, normal_p_value
from analytics.moments import Moments


@dataclass(frozen=True, slots=True)
class FixedTest:
    """A test statistic, its p-value, and the matching interval for ``delta``."""

    statistic: float
    p_value: float
    estimate: float  # candidate - control
    lower: float
    upper: float
    df: float  # degrees of freedom; ``inf`` for a z statistic


@dataclass(frozen=True, slots=True)
class ChiSquare:
    """A chi-square statistic with its p-value and degrees of freedom."""

    statistic: float
    p_value: float
    dof: int


def _check_counts(successes: int, n: int, arm: str) -> None:
    if n < 1:
        raise ValueError(f"{arm}: need at least one observation, got n={n}")
    if not 0 <= successes <= n:
        raise ValueError(f"{arm}: need 0 <= successes <= n, got {successes} of {n}")


def _t_p_value(t: float, df: float, side: Side) -> float:
    if side == "two-sided":
        return float(2.0 * special.stdtr(df, -abs(t)))
    if side == "greater":
        return float(special.stdtr(df, -t))
    return float(special.stdtr(df, t))


def _interval(estimate: float, se: float, quantile: float, side: Side) -> tuple[float, float]:
    lower = estimate - quantile * se if side != "less" else -math.inf
    upper = estimate + quantile * se if side != "greater" else math.inf
    return lower, upper


def welch_t_test(
    control: Moments,
    candidate: Moments,
    *,
    alpha: float = 0.05,
    side: Side = "two-sided",
    null: float = 0.0,
) -> FixedTest:
    """Return Welch's unequal-variance t-test of ``delta == null`` with its Welch interval.

    Raises ``ValueError`` with fewer than two observations per arm or when both arms have
    zero variance (the statistic is then 0/0, not a number).
    """
    alpha, side, null = check_alpha(alpha), check_side(side), check_finite("null", null)
    if control.n < 2 or candidate.n < 2:
        raise ValueError(
            f"Welch's t-test needs two observations per arm, got {control.n} and {candidate.n}"
        )
    v_control = control.variance / control.n
    v_candidate = candidate.variance / candidate.n
    se2 = v_control + v_candidate
    if se2 <= 0.0:
        raise ValueError("both arms have zero variance; Welch's t statistic is undefined")
    se = math.sqrt(se2)
    # Welch-Satterthwaite: the t reference distribution's effective degrees of freedom.
    df = se2 * se2 / (
        v_control * v_control / (control.n - 1) + v_candidate * v_candidate / (candidate.n - 1)
    )
    estimate = candidate.mean - control.mean
    t = (estimate - null) / se
    q_level = 1.0 - alpha / 2.0 if side == "two-sided" else 1.0 - alpha
    quantile = float(special.stdtrit(df, q_level))
    lower, upper = _interval(estimate, se, quantile, side)
    return FixedTest(t, _t_p_value(t, df, side), estimate, lower, upper, df)


def welch_interval(
    control: Moments, candidate: Moments, *, alpha: float = 0.05, side: Side = "two-sided"
) -> tuple[float, float]:
    """Return the Welch confidence interval for the difference of means (candidate - control)."""
    result = welch_t_test(control, candidate, alpha=alpha, side=side)
    return result.lower, result.upper


def two_proportion_z_test(
    successes_control: int,
    n_control: int,
    successes_candidate: int,
    n_candidate: int,
    *,
    alpha: float = 0.05,
    side: Side = "two-sided",
    null: float = 0.0,
) -> FixedTest:
    """Return the two-proportion z-test of ``delta == null`` with a Wald interval.

    With ``null == 0`` the variance is pooled (the textbook test, and statsmodels'
    ``proportions_ztest``); a non-zero null cannot share one rate across arms, so the
    unpooled (Wald) variance is used. A zero standard error happens only when the data are
    degenerate: z is then 0 when the estimate equals the null and infinite otherwise.
    """
    alpha, side, null = check_alpha(alpha), check_side(side), check_finite("null", null)
    _check_counts(successes_control, n_control, "control")
    _check_counts(successes_candidate, n_candidate, "candidate")
    p_control = successes_control / n_control
    p_candidate = successes_candidate / n_candidate
    estimate = p_candidate - p_control
    wald_var = p_control * (1 - p_control) / n_control + p_candidate * (1 - p_candidate) / (
        n_candidate
    )
    if null == 0.0:
        pooled = (successes_control + successes_candidate) / (n_control + n_candidate)
        test_var = pooled * (1 - pooled) * (1 / n_control + 1 / n_candidate)
    else:
        test_var = wald_var
    diff = estimate - null
    if test_var > 0.0:
        z = diff / math.sqrt(test_var)
    else:
        z = 0.0 if diff == 0.0 else math.copysign(math.inf, diff)
    q_level = 1.0 - alpha / 2.0 if side == "two-sided" else 1.0 - alpha
    lower, upper = _interval(estimate, math.sqrt(wald_var), float(special.ndtri(q_level)), side)
    return FixedTest(z, normal_p_value(z, side), estimate, lower, upper, math.inf)


def chi_square_independence(
    table: Sequence[Sequence[float]], *, correction: bool = False
) -> ChiSquare:
    """Return Pearson's chi-square test of independence for a contingency table.

    ``correction`` applies Yates' continuity correction when there is one degree of
    freedom (as ``scipy.stats.chi2_contingency`` does by default). Raises ``ValueError`` on
    negative or non-finite counts, or on a row or column that sums to zero.
    """
    observed = np.asarray(table, dtype=float)
    if observed.ndim != 2 or observed.shape[0] < 2 or observed.shape[1] < 2:
        raise ValueError(f"need a table of at least 2x2 counts, got shape {observed.shape}")
    if not np.all(np.isfinite(observed)) or np.any(observed < 0):
        raise ValueError("contingency counts must be finite and non-negative")
    rows, cols = observed.sum(axis=1), observed.sum(axis=0)
    if np.any(rows == 0) or np.any(cols == 0):
        raise ValueError("every row and column of the table needs a positive total")
    expected = np.outer(rows, cols) / observed.sum()
    dof = (observed.shape[0] - 1) * (observed.shape[1] - 1)
    gap = np.abs(observed - expected)
    if correction and dof == 1:
        gap = np.maximum(gap - 0.5, 0.0)  # never past zero: Yates must not flip the sign
    statistic = float(np.sum(gap * gap / expected))
    return ChiSquare(statistic, float(stats.chi2.sf(statistic, dof)), dof)
