"""The canary's analysis tick, vectorised: many post-stratified comparisons in one call.

``compare_strata`` is convenient for one pair; a tick over a thousand deployments times
several metrics and arms would spend its time in Python overhead. ``compare_strata_batch``
computes the same post-stratified estimate (Cochran-Mantel-Haenszel weights, see
``analytics.estimates``), confidence sequence and p-value as ``compare_strata(...,
method="sequential")`` for arrays of moments at once, and ``compare_batch`` is its
single-stratum case, ``compare``'s twin. The tests hold batch and scalar to agree.

Arrays are laid out ``(..., strata)``: every leading index is one comparison, the last axis
its strata (ramp steps). A stratum in which either arm has no data carries no comparison;
the batch ignores it as if it had not been passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.hypotheses import SIDES, MetricKind, Side, check_kind
from analytics.moments import Moments
from analytics.sequential import confidence_sequence

ArrayLike = Any  # float or numpy array; every argument broadcasts over the comparisons


@dataclass(frozen=True, slots=True, eq=False)
class MomentsArray:
    """``Moments`` (n, total, m2) of many arms as parallel arrays (any shape, all the same)."""

    n: np.ndarray
    total: np.ndarray
    m2: np.ndarray

    def __post_init__(self) -> None:
        shapes = {np.shape(self.n), np.shape(self.total), np.shape(self.m2)}
        if len(shapes) != 1:
            raise ValueError(f"n, total and m2 must share one shape, got {shapes}")
        for name in ("n", "total", "m2"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise ValueError(f"{name} must be finite")
        if np.any(np.asarray(self.n) < 0) or np.any(np.asarray(self.m2) < 0):
            raise ValueError("n and m2 must be non-negative")

    @classmethod
    def from_moments(cls, moments: Sequence[Moments]) -> MomentsArray:
        """Return the arrays of a sequence of ``Moments``."""
        return cls(
            np.array([m.n for m in moments], dtype=float),
            np.array([m.total for m in moments], dtype=float),
            np.array([m.m2 for m in moments], dtype=float),
        )

    @classmethod
    def from_proportions(cls, successes: ArrayLike, n: ArrayLike) -> MomentsArray:
        """Return the arrays of ``successes`` ones among ``n`` 0/1 observations each."""
        s, size = np.asarray(successes, dtype=float), np.asarray(n, dtype=float)
        return cls(size, s, s * (size - s) / np.maximum(size, 1.0))

    def variance(self, kind: MetricKind | np.ndarray | bool) -> np.ndarray:
        """Return per-observation variances as ``analytics.estimates.arm_variance`` does.

        ``kind`` is one metric kind, or an array of kinds (or of booleans, "is a
        proportion") broadcasting against the arms.
        """
        n = np.asarray(self.n, dtype=float)
        proportion = _is_proportion(kind)
        spread = np.where(n >= 2, self.m2 / np.maximum(n - 1.0, 1.0), 0.0)
        if proportion is False:
            return spread
        successes = np.round(self.total)
        inner = (successes > 0) & (successes < n)
        p = np.where(inner, self.total / np.maximum(n, 1.0), (successes + 0.5) / (n + 1.0))
        return np.where(proportion, p * (1.0 - p), spread)

    def mean(self) -> np.ndarray:
        """Return per-arm means; 0.0 (never NaN) for empty arms."""
        n = np.asarray(self.n, dtype=float)
        return np.where(n > 0, self.total / np.maximum(n, 1.0), 0.0)


def _is_proportion(kind: MetricKind | np.ndarray | bool) -> np.ndarray | bool:
    if isinstance(kind, bool | np.bool_):
        return bool(kind)
    if isinstance(kind, str):
        return check_kind(kind) == "proportion"
    kinds = np.asarray(kind)
    if kinds.dtype == bool:
        return kinds  # already the "is a proportion" mask
    unknown = set(np.unique(kinds).tolist()) - {"proportion", "mean", "log_mean"}
    if unknown:
        raise ValueError(f"unknown metric kinds {sorted(unknown)}")
    return kinds == "proportion"


@dataclass(frozen=True, slots=True, eq=False)
class DifferenceArray:
    """``analytics.estimates.Difference`` of many comparisons, as arrays over them."""

    estimate: np.ndarray  # post-stratified candidate - control (0 where nothing is usable)
    se: np.ndarray
    n: np.ndarray  # observations in the usable strata, both arms
    effective_n: np.ndarray  # 4 * sum of CMH weights: evenly split size of equal precision
    n_control: np.ndarray  # observations over the strata with data in both arms
    n_candidate: np.ndarray
    mean_control: np.ndarray  # post-stratified means
    mean_candidate: np.ndarray
    pooled: np.ndarray  # the plain pooled difference, reported when nothing is usable
    usable: np.ndarray  # bool: some stratum had enough data in both arms


def stratified_differences(
    control: MomentsArray, candidate: MomentsArray, kind: MetricKind | np.ndarray
) -> DifferenceArray:
    """Return ``stratified_difference`` for every comparison of ``(..., strata)`` arrays.

    ``kind`` is one metric kind or an array of kinds (or of booleans, "is a proportion"),
    one per comparison (shape ``...``).
    """
    if np.shape(control.n) != np.shape(candidate.n) or np.ndim(control.n) < 1:
        raise ValueError("control and candidate need the same shape, with a strata axis last")
    mask = _is_proportion(kind)
    proportion = mask if isinstance(mask, bool) else mask[..., None]
    n_c, n_t = np.asarray(control.n, dtype=float), np.asarray(candidate.n, dtype=float)
    present = (n_c > 0) & (n_t > 0)
    minimum = np.where(proportion, 1.0, 2.0)
    usable = present & (n_c >= minimum) & (n_t >= minimum)
    safe_c, safe_t = np.maximum(n_c, 1.0), np.maximum(n_t, 1.0)
    size = np.where(usable, n_c * n_t / np.maximum(n_c + n_t, 1.0), 0.0)
    weight_sum = size.sum(axis=-1)
    weight = size / np.maximum(weight_sum, 1e-300)[..., None]
    mean_c, mean_t = control.mean(), candidate.mean()
    var_c, var_t = control.variance(proportion), candidate.variance(proportion)
    variance = np.where(usable, var_c / safe_c + var_t / safe_t, 0.0)
    all_c = np.where(present, n_c, 0.0).sum(axis=-1)
    all_t = np.where(present, n_t, 0.0).sum(axis=-1)
    total_c = np.where(present, control.total, 0.0).sum(axis=-1)
    total_t = np.where(present, candidate.total, 0.0).sum(axis=-1)
    pooled = np.where(
        (all_c > 0) & (all_t > 0),
        total_t / np.maximum(all_t, 1.0) - total_c / np.maximum(all_c, 1.0),
        0.0,
    )
    return DifferenceArray(
        estimate=(weight * (mean_t - mean_c)).sum(axis=-1),
        se=np.sqrt((weight * weight * variance).sum(axis=-1)),
        n=np.where(usable, n_c + n_t, 0.0).sum(axis=-1),
        effective_n=4.0 * weight_sum,
        n_control=all_c,
        n_candidate=all_t,
        mean_control=(weight * mean_c).sum(axis=-1),
        mean_candidate=(weight * mean_t).sum(axis=-1),
        pooled=pooled,
        usable=usable.any(axis=-1),
    )


@dataclass(frozen=True, slots=True, eq=False)
class SequentialBatch:
    """Per-comparison estimate, always-valid bounds and p-value, and whether data sufficed.

    ``difference`` holds what the estimate rests on (sizes, means), for evidence.
    """

    estimate: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    p_value: np.ndarray
    enough_data: np.ndarray
    difference: DifferenceArray | None = None


def compare_strata_batch(
    control: MomentsArray,
    candidate: MomentsArray,
    *,
    kind: MetricKind | np.ndarray,
    alpha: ArrayLike = 0.05,
    side: Side | np.ndarray = "two-sided",
    null: ArrayLike = 0.0,
    n_star: ArrayLike | None = None,
    min_samples: ArrayLike = 0,
) -> SequentialBatch:
    """Return the post-stratified sequential comparison of every ``(..., strata)`` pair.

    Element for element the same numbers as ``compare_strata(..., method="sequential")``
    given the strata with data in both arms. ``alpha``, ``side``, ``null``, ``n_star`` and
    ``min_samples`` (observations per arm, over all strata, before anything may be
    concluded) may be arrays, one per comparison. Comparisons without enough data get
    infinite bounds, p-value 1 and the pooled difference as a description.
    """
    diff = stratified_differences(control, candidate, kind)
    least = np.asarray(min_samples, dtype=float)
    enough = (
        diff.usable & (diff.se > 0.0) & (np.minimum(diff.n_control, diff.n_candidate) >= least)
    )
    shape = np.shape(diff.estimate)
    lower, upper, p_value = np.full(shape, -np.inf), np.full(shape, np.inf), np.ones(shape)
    sides = np.broadcast_to(np.asarray(side), shape).ravel()
    flat_enough = enough.ravel()
    masks = {one_side: sides == one_side for one_side in SIDES}
    if sum(int(m.sum()) for m in masks.values()) != sides.size:
        raise ValueError(f"side must be one of {SIDES}")
    for one_side, mask in masks.items():
        at = np.flatnonzero(flat_enough & mask)
        if not at.size:
            continue
        cs = confidence_sequence(
            diff.estimate.ravel()[at],
            diff.se.ravel()[at],
            diff.effective_n.ravel()[at],
            alpha=_pick(alpha, shape, at),
            n_star=None if n_star is None else _pick(n_star, shape, at),
            side=one_side,
            null=_pick(null, shape, at),
        )
        lower.ravel()[at], upper.ravel()[at] = cs.lower, cs.upper
        p_value.ravel()[at] = cs.p_value
    estimate = np.where(enough, diff.estimate, diff.pooled)
    return SequentialBatch(estimate, lower, upper, p_value, enough, diff)


def _pick(value: ArrayLike, shape: tuple[int, ...], at: np.ndarray) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, dtype=float), shape).ravel()[at]


def compare_batch(
    control: MomentsArray,
    candidate: MomentsArray,
    *,
    kind: MetricKind | np.ndarray,
    alpha: ArrayLike = 0.05,
    side: Side = "two-sided",
    null: ArrayLike = 0.0,
    n_star: ArrayLike | None = None,
) -> SequentialBatch:
    """Return the sequential comparison of every (control, candidate) pair at once.

    Element for element the same numbers as ``compare(..., method="sequential")``: the
    single-stratum case of ``compare_strata_batch``. Proportions are checked to be 0/1 data.
    """
    if np.shape(control.n) != np.shape(candidate.n):
        raise ValueError("control and candidate arrays must have the same shape")
    if isinstance(kind, str) and check_kind(kind) == "proportion":
        for arm, m in (("control", control), ("candidate", candidate)):
            s, n = np.asarray(m.total), np.asarray(m.n)
            bad = (s < 0) | (s > n) | (np.abs(s - np.round(s)) > 1e-6)
            spread = s * (n - s) / np.maximum(n, 1.0)
            if np.any(bad | (np.abs(np.asarray(m.m2) - spread) > 1e-6 * np.maximum(n, 1.0))):
                raise ValueError(f"{arm}: moments do not describe 0/1 data")
    one = MomentsArray(control.n[..., None], control.total[..., None], control.m2[..., None])
    two = MomentsArray(
        candidate.n[..., None], candidate.total[..., None], candidate.m2[..., None]
    )
    return compare_strata_batch(
        one, two, kind=kind, alpha=alpha, side=side, null=null, n_star=n_star
    )
