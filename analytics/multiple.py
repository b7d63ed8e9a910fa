"""Adjusting p-values for many simultaneous tests (metrics of a canary, arms of a test).

Every function adjusts along the last axis, so a whole tick of deployments x metrics is
one call; a plain list of p-values is the 1-D case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analytics.hypotheses import check_alpha


@dataclass(frozen=True, slots=True, eq=False)
class Adjustment:
    """Adjusted p-values and which hypotheses are rejected at the family level."""

    p_adjusted: np.ndarray
    reject: np.ndarray  # bool, same shape: p_adjusted <= alpha


def _as_p_values(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    p = np.asarray(p_values, dtype=float)
    if p.ndim == 0 or p.shape[-1] == 0:
        raise ValueError("need at least one p-value")
    if np.any(~np.isfinite(p)) or np.any((p < 0.0) | (p > 1.0)):
        raise ValueError("p-values must lie in [0, 1] (no NaN)")
    return p


def bonferroni(p_values: Sequence[float] | np.ndarray, *, alpha: float = 0.05) -> Adjustment:
    """Return Bonferroni-adjusted p-values: ``min(1, m * p)``; controls the family-wise error."""
    alpha = check_alpha(alpha)
    p = _as_p_values(p_values)
    adjusted = np.minimum(1.0, p * p.shape[-1])
    return Adjustment(adjusted, adjusted <= alpha)


def holm(
    p_values: Sequence[float] | np.ndarray,
    *,
    alpha: float = 0.05,
    weights: Sequence[float] | np.ndarray | None = None,
) -> Adjustment:
    """Return Holm step-down adjusted p-values; controls the family-wise error, never less
    powerful than Bonferroni.

    With ``weights`` (positive, along the last axis) this is Holm's weighted procedure:
    hypothesis ``i`` starts with the share ``w_i / sum(w)`` of alpha, and each rejection
    hands its share on to those left, so the family-wise error stays at alpha whatever the
    weights. Equal weights give plain Holm. The canary weights its harm checks so that
    the primary metric, where a large harm shows first, gets most of alpha.
    """
    alpha = check_alpha(alpha)
    p = _as_p_values(p_values)
    if weights is None:
        w = np.ones(p.shape)
    else:
        w = np.broadcast_to(np.asarray(weights, dtype=float), p.shape)
        if not np.all(np.isfinite(w) & (w > 0.0)):
            raise ValueError("Holm weights must be positive and finite")
    # Step-down in order of p / w: at each rank the hypothesis is tested at alpha times its
    # share of the weight still in play.
    order = np.argsort(p / w, axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=-1)
    ranked_w = np.take_along_axis(w, order, axis=-1)
    remaining = np.flip(np.cumsum(np.flip(ranked_w, -1), axis=-1), -1)
    factors = remaining / ranked_w  # m, m-1, ..., 1 when the weights are equal
    # Step-down: an adjusted p-value can never be smaller than the one ranked before it.
    stepped = np.minimum(1.0, np.maximum.accumulate(ranked * factors, axis=-1))
    adjusted = np.empty_like(stepped)
    np.put_along_axis(adjusted, order, stepped, axis=-1)
    return Adjustment(adjusted, adjusted <= alpha)


def benjamini_hochberg(
    p_values: Sequence[float] | np.ndarray, *, alpha: float = 0.05
) -> Adjustment:
    """Return Benjamini-Hochberg adjusted p-values (q-values); controls the false discovery
    rate for independent or positively dependent tests."""
    alpha = check_alpha(alpha)
    p = _as_p_values(p_values)
    m = p.shape[-1]
    order = np.argsort(p, axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=-1)
    scaled = ranked * (m / np.arange(1, m + 1, dtype=float))
    # Step-up: each q-value is the smallest scaled p-value at its rank or above.
    stepped = np.minimum(1.0, np.flip(np.minimum.accumulate(np.flip(scaled, -1), axis=-1), -1))
    adjusted = np.empty_like(stepped)
    np.put_along_axis(adjusted, order, stepped, axis=-1)
    return Adjustment(adjusted, adjusted <= alpha)
