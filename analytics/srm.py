"""Sample-ratio mismatch: are the arms getting the traffic their weights promise?

A mismatch means assignment or logging is broken (a crashing arm that never reports, a
bot hitting one arm), so no comparison of those arms can be trusted. The test is Pearson's
chi-square goodness of fit of the assignment counts against the configured weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

from analytics.hypotheses import check_alpha

SRM_THRESHOLD = 0.001  # strict: a false alarm halts a rollout, so only flag the unmistakable


@dataclass(frozen=True, slots=True)
class SrmResult:
    """The chi-square statistic and p-value; ``mismatch`` is the verdict to act on."""

    statistic: float
    p_value: float
    mismatch: bool
    enough_data: bool


@dataclass(frozen=True, slots=True, eq=False)
class SrmBatch:
    """``SrmResult`` fields as arrays, one entry per row (deployment)."""

    statistic: np.ndarray
    p_value: np.ndarray
    mismatch: np.ndarray
    enough_data: np.ndarray


def srm_tests(
    observed: np.ndarray | Sequence[Sequence[int]],
    weights: np.ndarray | Sequence[Sequence[float]],
    *,
    threshold: float = SRM_THRESHOLD,
    min_count: int = 100,
) -> SrmBatch:
    """Return the sample-ratio test of every row of ``observed`` against its ``weights``.

    ``enough_data`` requires every arm with positive weight to *expect* at least
    ``min_count`` observations (so an arm that receives nothing at all is still caught).
    Observations in an arm whose weight is zero are a mismatch at any count. Raises
    ``ValueError`` on negative or non-finite counts or weights, or a row of zero weights.
    """
    threshold = check_alpha(threshold)
    if min_count < 0:
        raise ValueError(f"min_count must be >= 0, got {min_count}")
    obs = np.atleast_2d(np.asarray(observed, dtype=float))
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    if obs.shape != w.shape:
        raise ValueError(f"observed {obs.shape} and weights {w.shape} must have the same shape")
    if obs.shape[-1] < 2:
        raise ValueError("a sample-ratio test needs at least two arms")
    if not (np.all(np.isfinite(obs)) and np.all(np.isfinite(w))):
        raise ValueError("counts and weights must be finite")
    if np.any(obs < 0) or np.any(w < 0):
        raise ValueError("counts and weights must be non-negative")
    weight_sum = w.sum(axis=-1, keepdims=True)
    if np.any(weight_sum <= 0):
        raise ValueError("every row needs a positive total weight")
    total = obs.sum(axis=-1, keepdims=True)
    expected = total * w / weight_sum
    live = w > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(live, (obs - expected) ** 2 / expected, 0.0)
    terms = np.where(live & (expected == 0), 0.0, terms)  # no traffic yet: no evidence
    stray = np.any(~live & (obs > 0), axis=-1)
    statistic = np.where(stray, np.inf, terms.sum(axis=-1))
    dof = live.sum(axis=-1) - 1
    with np.errstate(invalid="ignore"):
        p = np.where(dof > 0, special.chdtrc(np.maximum(dof, 1), statistic), 1.0)
    p = np.where(stray, 0.0, p)
    enough = np.all(~live | (expected >= min_count), axis=-1) & (total[..., 0] > 0)
    mismatch = stray | (enough & (p < threshold))
    return SrmBatch(statistic, p, mismatch, enough)


def srm_test(
    observed: Sequence[int],
    weights: Sequence[float],
    *,
    threshold: float = SRM_THRESHOLD,
    min_count: int = 100,
) -> SrmResult:
    """Return the sample-ratio test of assignment counts against expected weights;
    ``mismatch`` when ``p < threshold`` with enough data (see ``srm_tests``)."""
    batch = srm_tests([list(observed)], [list(weights)], threshold=threshold, min_count=min_count)
    return SrmResult(
        float(batch.statistic[0]), float(batch.p_value[0]), bool(batch.mismatch[0]),
        bool(batch.enough_data[0]),
    )
