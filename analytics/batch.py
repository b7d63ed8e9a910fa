"""The canary's analysis tick, vectorised: many (control, candidate) pairs in one call.

``compare`` is convenient for one pair; a tick over a thousand deployments times several
metrics would spend its time in Python overhead. ``compare_batch`` computes the same
estimate, confidence sequence and p-value as ``compare(method="sequential")`` for arrays of
moments at once (the tests hold the two to agree).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analytics.hypotheses import MetricKind, Side, check_alpha, check_kind, check_side
from analytics.moments import Moments
from analytics.sequential import check_n_star, confidence_sequence


@dataclass(frozen=True, slots=True, eq=False)
class MomentsArray:
    """``Moments`` of many arms as parallel arrays (any shape, all the same)."""

    n: np.ndarray
    total: np.ndarray
    total_sq: np.ndarray

    def __post_init__(self) -> None:
        shapes = {np.shape(self.n), np.shape(self.total), np.shape(self.total_sq)}
        if len(shapes) != 1:
            raise ValueError(f"n, total and total_sq must share one shape, got {shapes}")
        for name in ("n", "total", "total_sq"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise ValueError(f"{name} must be finite")
        if np.any(np.asarray(self.n) < 0) or np.any(np.asarray(self.total_sq) < 0):
            raise ValueError("n and total_sq must be non-negative")

    @classmethod
    def from_moments(cls, moments: Sequence[Moments]) -> MomentsArray:
        """Return the arrays of a sequence of ``Moments``."""
        return cls(
            np.array([m.n for m in moments], dtype=float),
            np.array([m.total for m in moments], dtype=float),
            np.array([m.total_sq for m in moments], dtype=float),
        )

    def variance(self, kind: MetricKind) -> np.ndarray:
        """Return per-observation variances as ``analytics.estimates.arm_variance`` does."""
        n = np.asarray(self.n, dtype=float)
        safe_n = np.maximum(n, 1.0)
        if kind == "proportion":
            successes = np.round(self.total)
            inner = (successes > 0) & (successes < n)
            p = np.where(inner, self.total / safe_n, (successes + 0.5) / (n + 1.0))
            return p * (1.0 - p)
        raw = (self.total_sq - self.total * self.total / safe_n) / np.maximum(n - 1.0, 1.0)
        return np.where(n >= 2, np.maximum(raw, 0.0), 0.0)

    def mean(self) -> np.ndarray:
        """Return per-arm means; 0.0 (never NaN) for empty arms."""
        n = np.asarray(self.n, dtype=float)
        return np.where(n > 0, self.total / np.maximum(n, 1.0), 0.0)


@dataclass(frozen=True, slots=True, eq=False)
class SequentialBatch:
    """Per-pair estimate, always-valid bounds and p-value, and whether data sufficed."""

    estimate: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    p_value: np.ndarray
    enough_data: np.ndarray


def compare_batch(
    control: MomentsArray,
    candidate: MomentsArray,
    *,
    kind: MetricKind,
    alpha: float = 0.05,
    side: Side = "two-sided",
    null: float | np.ndarray = 0.0,
    n_star: float | None = None,
) -> SequentialBatch:
    """Return the sequential comparison of every (control, candidate) pair at once.

    Element for element the same numbers as ``compare(..., method="sequential")``;
    ``null`` may be an array (per-deployment tolerances). Pairs without enough data get
    infinite bounds and p-value 1, as there.
    """
    kind, side, alpha = check_kind(kind), check_side(side), check_alpha(alpha)
    n_star = check_n_star(n_star)
    if np.shape(control.n) != np.shape(candidate.n):
        raise ValueError("control and candidate arrays must have the same shape")
    if kind == "proportion":
        for arm, m in (("control", control), ("candidate", candidate)):
            s = np.asarray(m.total)
            bad = (s < 0) | (s > m.n) | (np.abs(s - np.round(s)) > 1e-6)
            if np.any(bad | (np.abs(np.asarray(m.total_sq) - s) > 1e-6)):
                raise ValueError(f"{arm}: moments do not describe 0/1 data")
    minimum = 1 if kind == "proportion" else 2
    n_c, n_t = np.asarray(control.n, dtype=float), np.asarray(candidate.n, dtype=float)
    sized = (n_c >= minimum) & (n_t >= minimum)
    estimate = np.where((n_c > 0) & (n_t > 0), candidate.mean() - control.mean(), 0.0)
    var = np.where(
        sized,
        control.variance(kind) / np.maximum(n_c, 1.0)
        + candidate.variance(kind) / np.maximum(n_t, 1.0),
        0.0,
    )
    se = np.sqrt(var)
    cs = confidence_sequence(
        estimate, se, np.where(sized, n_c + n_t, 0.0), alpha=alpha, n_star=n_star, side=side,
        null=null,
    )
    enough = sized & (se > 0.0)
    return SequentialBatch(estimate, np.asarray(cs.lower), np.asarray(cs.upper),
                           np.asarray(cs.p_value), enough)
