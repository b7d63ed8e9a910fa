"""Mann-Whitney U with the Hodges-Lehmann shift estimate and its distribution-free interval.

Unlike everything else in ``analytics`` this needs raw values, so it is for reports and
offline validation of skewed metrics (latency, cost), not for the canary's streaming tick.
The pairwise differences are never materialised: order statistics of the m*n differences
are found by bisection with sorted-array counting, so memory stays O(m + n).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from analytics.hypotheses import Side, check_alpha, check_side, normal_quantile

# Below this many remaining candidates the bisection stops and sorts them directly.
_GATHER_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class MannWhitney:
    """Mann-Whitney U for the candidate, its p-value, and the Hodges-Lehmann shift."""

    u: float  # U of the candidate sample: pairs where candidate > control, ties count half
    p_value: float
    shift: float  # Hodges-Lehmann: median of candidate_i - control_j
    lower: float  # may be -inf when the samples are too small for the level asked
    upper: float


def _clean(values: Sequence[float] | np.ndarray, arm: str) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel()
    if array.size == 0:
        raise ValueError(f"{arm}: need at least one observation")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{arm}: observations must be finite")
    return np.sort(array)


def _count_at_most(control: np.ndarray, candidate: np.ndarray, t: float) -> int:
    """Return #{(i, j): candidate_i - control_j <= t}."""
    # candidate_i - control_j <= t  <=>  control_j >= candidate_i - t
    below = np.searchsorted(control, candidate - t, side="left")
    return int(control.size * candidate.size - below.sum())


def _gather(control: np.ndarray, candidate: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Return every difference in the half-open range (lo, hi], sorted."""
    start = np.searchsorted(control, candidate - hi, side="left")
    stop = np.searchsorted(control, candidate - lo, side="left")
    parts = [candidate[i] - control[start[i] : stop[i]] for i in np.nonzero(stop > start)[0]]
    return np.sort(np.concatenate(parts)) if parts else np.empty(0)


def _smallest_above(control: np.ndarray, candidate: np.ndarray, lo: float) -> float:
    """Return the smallest difference ``candidate_i - control_j`` greater than ``lo``."""
    stop = np.searchsorted(control, candidate - lo, side="left")
    rows = np.nonzero(stop > 0)[0]
    return float(np.min(candidate[rows] - control[stop[rows] - 1]))


def kth_pairwise_difference(control: np.ndarray, candidate: np.ndarray, k: int) -> float:
    """Return the k-th smallest (1-based) of ``candidate_i - control_j`` over all pairs.

    Both arrays must be sorted. Bisection keeps count(<= lo) < k <= count(<= hi).
    """
    total = control.size * candidate.size
    if not 1 <= k <= total:
        raise ValueError(f"k must lie in [1, {total}], got {k}")
    hi = float(candidate[-1] - control[0])
    lo = float(candidate[0] - control[-1])
    below_lo = _count_at_most(control, candidate, lo)
    if below_lo >= k:
        return lo
    while True:
        below_hi = _count_at_most(control, candidate, hi)
        if below_hi - below_lo <= _GATHER_LIMIT:
            between = _gather(control, candidate, lo, hi)
            return float(between[k - below_lo - 1])
        mid = lo + (hi - lo) / 2.0
        if mid <= lo or mid >= hi:
            # Float resolution reached: (lo, hi] holds only tied differences, too many to
            # gather. Return one of them (the row-wise smallest), not the threshold ``hi``.
            return _smallest_above(control, candidate, lo)
        below_mid = _count_at_most(control, candidate, mid)
        if below_mid >= k:
            hi = mid
        else:
            lo, below_lo = mid, below_mid


def hodges_lehmann(
    control: Sequence[float] | np.ndarray, candidate: Sequence[float] | np.ndarray
) -> float:
    """Return the Hodges-Lehmann shift: the median of all ``candidate_i - control_j``."""
    x, y = _clean(control, "control"), _clean(candidate, "candidate")
    total = x.size * y.size
    if total % 2:
        return kth_pairwise_difference(x, y, total // 2 + 1)
    return 0.5 * (
        kth_pairwise_difference(x, y, total // 2) + kth_pairwise_difference(x, y, total // 2 + 1)
    )


def _u_and_tie_sigma(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    combined = np.concatenate([y, x])
    ranks = stats.rankdata(combined)
    m, n = y.size, x.size
    u = float(ranks[:m].sum() - m * (m + 1) / 2.0)
    _, tie_counts = np.unique(combined, return_counts=True)
    tie_term = float(np.sum(tie_counts.astype(float) ** 3 - tie_counts))
    total = m + n
    variance = m * n / 12.0 * ((total + 1) - tie_term / (total * (total - 1))) if total > 1 else 0
    return u, math.sqrt(max(variance, 0.0))


def mann_whitney(
    control: Sequence[float] | np.ndarray,
    candidate: Sequence[float] | np.ndarray,
    *,
    alpha: float = 0.05,
    side: Side = "two-sided",
) -> MannWhitney:
    """Return the Mann-Whitney U test (normal approximation, tie and continuity corrected)
    with the Hodges-Lehmann shift and its distribution-free interval.

    The p-value is the one ``scipy.stats.mannwhitneyu(candidate, control,
    method="asymptotic")`` gives. The interval is the order-statistic interval of the
    pairwise differences, its rank taken from the normal approximation of U without tie
    correction; it is infinite on a side when the samples are too small for the level.
    """
    alpha, side = check_alpha(alpha), check_side(side)
    x, y = _clean(control, "control"), _clean(candidate, "candidate")
    m, n = y.size, x.size
    u, sigma = _u_and_tie_sigma(x, y)
    mu = m * n / 2.0
    u_tested = {"greater": u, "less": m * n - u, "two-sided": max(u, m * n - u)}[side]
    if sigma > 0.0:
        z = (u_tested - mu - 0.5) / sigma
        p = float(special.ndtr(-z)) * (2.0 if side == "two-sided" else 1.0)
        p = min(max(p, 0.0), 1.0)
    else:
        p = 1.0  # every value is tied: the data carry no evidence of a shift
    shift = hodges_lehmann(x, y)
    lower, upper = _shift_interval(x, y, alpha, side)
    return MannWhitney(u, p, shift, lower, upper)


def _shift_interval(x: np.ndarray, y: np.ndarray, alpha: float, side: Side) -> tuple[float, float]:
    m, n = y.size, x.size
    total = m * n
    tail = alpha / 2.0 if side == "two-sided" else alpha
    sigma = math.sqrt(m * n * (m + n + 1) / 12.0)
    # The largest c with P(U <= c) <= tail under the continuity-corrected normal law; the
    # shifts not rejected are then D_(c+1) <= shift <= D_(mn-c).
    c = math.floor(total / 2.0 - 0.5 - normal_quantile(1.0 - tail) * sigma)
    if c < 0:
        bounds = (-math.inf, math.inf)
    else:
        bounds = (kth_pairwise_difference(x, y, c + 1), kth_pairwise_difference(x, y, total - c))
    if side == "greater":
        return bounds[0], math.inf
    if side == "less":
        return -math.inf, bounds[1]
    return bounds
