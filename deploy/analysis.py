"""Batched evaluation of the comparisons one canary tick needs, over many deployments at once.

A tick plans its one-sided comparisons per deployment (``Check``: which arms, which
metric, which boundary, the per-step moments), then evaluates all of them together. The
result for each check is exactly what ``analytics.compare.compare_strata`` gives for it
(the tests hold the two equal): the post-stratified difference of
``analytics.estimates.stratified_difference``, with per-arm means and variances taken from
``analytics.batch.MomentsArray``, and the always-valid bounds and p-value of one
vectorised ``analytics.sequential.confidence_sequence`` call per (alpha, N*, side) group.
Calling ``compare_strata`` once per check costs ~100 us each; a tick over a thousand
deployments with five metrics each would take seconds instead of milliseconds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from analytics.batch import MomentsArray
from analytics.compare import describe
from analytics.estimates import min_arm_size
from analytics.moments import Moments
from analytics.multiple import holm
from analytics.sequential import confidence_sequence
from analytics.srm import SrmResult, srm_tests
from deploy.stats import METRICS, Kind, MetricName

Strata = tuple[tuple[Moments, Moments], ...]


# Check and Bound are NamedTuples rather than frozen dataclasses: a tick over a thousand
# deployments makes ~10,000 of each, and a frozen dataclass's __init__ costs ten times more.
class Check(NamedTuple):
    """One planned one-sided comparison of ``arm`` against ``base`` on one metric."""

    arm: str
    base: str
    metric: MetricName
    side: str  # the alternative: "less" = delta below null, "greater" = above
    null: float
    alpha: float
    n_star: float | None
    strata: Strata  # (base, arm) moments per step
    min_samples: int = 0  # per arm, over all strata, before the check may conclude


class Bound(NamedTuple):
    """The outcome of a ``Check``: post-stratified estimate, always-valid bound, p-value."""

    check: Check
    estimate: float
    lower: float
    upper: float
    p_value: float
    enough_data: bool
    n_control: int
    n_candidate: int
    mean_control: float
    mean_candidate: float

    @property
    def rejects(self) -> bool:
        """Return whether the data reject the null toward the alternative at alpha."""
        return self.enough_data and self.p_value <= self.check.alpha

    def to_json(self) -> dict[str, object]:
        """Return the statistics snapshot for the evidence (n, estimate, bounds, p, null)."""
        return {
            "n_control": self.n_control,
            "n_candidate": self.n_candidate,
            "estimate": self.estimate,
            "lower": _finite(self.lower),
            "upper": _finite(self.upper),
            "p": self.p_value,
            "null": self.check.null,
            "side": self.check.side,
            "enough_data": self.enough_data,
        }

    def reading(self) -> str:
        """Return the plain-English line analytics gives this comparison."""
        if not self.enough_data:
            return f"not enough data yet ({self.n_control} vs {self.n_candidate})"
        spec = METRICS[self.check.metric]
        return describe(
            spec.kind,
            spec.better,
            self.check.alpha,
            self.check.side,  # type: ignore[arg-type]
            self.check.null,
            self.estimate,
            self.mean_control,
            self.mean_candidate,
            self.lower,
            self.upper,
            self.p_value,
            sequential=True,
        )


def evaluate(checks: Sequence[Check]) -> list[Bound]:
    """Return the bound of every check, in order, in a handful of vectorised calls."""
    count = len(checks)
    diff = _Differences.zeros(count)
    by_kind: dict[Kind, list[int]] = defaultdict(list)
    for i, check in enumerate(checks):
        by_kind[METRICS[check.metric].kind].append(i)
    for kind, indices in by_kind.items():
        diff.fill(kind, indices, checks)
    least = np.array([check.min_samples for check in checks], dtype=float)
    enough = (
        (diff.n > 0) & (diff.se > 0.0) & (np.minimum(diff.n_control, diff.n_candidate) >= least)
    )
    estimate = np.where(enough, diff.estimate, diff.pooled)
    lower = np.full(count, -math.inf)
    upper = np.full(count, math.inf)
    p_value = np.ones(count)
    groups: dict[tuple[float, float | None, str], list[int]] = defaultdict(list)
    for i, check in enumerate(checks):
        if enough[i]:
            groups[(check.alpha, check.n_star, check.side)].append(i)
    for (alpha, n_star, side), indices in groups.items():
        at = np.array(indices)
        cs = confidence_sequence(
            diff.estimate[at],
            diff.se[at],
            diff.n[at],
            alpha=alpha,
            n_star=n_star,
            side=side,  # type: ignore[arg-type]
            null=np.array([checks[i].null for i in indices]),
        )
        lower[at], upper[at], p_value[at] = cs.lower, cs.upper, cs.p_value
    columns = zip(
        estimate.tolist(),
        lower.tolist(),
        upper.tolist(),
        p_value.tolist(),
        enough.tolist(),
        diff.n_control.tolist(),
        diff.n_candidate.tolist(),
        diff.mean_control.tolist(),
        diff.mean_candidate.tolist(),
        strict=True,
    )
    return [
        Bound(check, est, lo, hi, p, ok, int(n_c), int(n_t), m_c, m_t)
        for check, (est, lo, hi, p, ok, n_c, n_t, m_c, m_t) in zip(checks, columns, strict=True)
    ]


@dataclass
class _Differences:
    """Per-check post-stratified differences as arrays (``stratified_difference``, batched)."""

    estimate: np.ndarray
    se: np.ndarray
    n: np.ndarray
    n_control: np.ndarray
    n_candidate: np.ndarray
    mean_control: np.ndarray
    mean_candidate: np.ndarray
    pooled: np.ndarray

    @classmethod
    def zeros(cls, count: int) -> _Differences:
        return cls(*(np.zeros(count) for _ in range(8)))

    def fill(self, kind: Kind, indices: Sequence[int], checks: Sequence[Check]) -> None:
        owner: list[int] = []
        rows: list[tuple[float, float, float, float, float, float]] = []
        for slot, i in enumerate(indices):
            for control, candidate in checks[i].strata:
                owner.append(slot)
                rows.append(
                    (
                        control.n,
                        control.total,
                        control.total_sq,
                        candidate.n,
                        candidate.total,
                        candidate.total_sq,
                    )
                )
        if not rows:
            return
        data = np.array(rows, dtype=float)
        own = np.array(owner)
        control = MomentsArray(data[:, 0], data[:, 1], data[:, 2])
        candidate = MomentsArray(data[:, 3], data[:, 4], data[:, 5])
        n_c, n_t = data[:, 0], data[:, 3]
        minimum = min_arm_size(kind)
        # A stratum where either arm is too small for a variance is left out, as in
        # stratified_difference; each remaining one weighs by its share of observations.
        usable = (n_c >= minimum) & (n_t >= minimum)
        size = np.where(usable, n_c + n_t, 0.0)
        slots = len(indices)
        total = np.bincount(own, size, minlength=slots)
        weight = np.where(usable, size / np.maximum(total[own], 1.0), 0.0)
        mean_c, mean_t = control.mean(), candidate.mean()
        var = control.variance(kind) / np.maximum(n_c, 1.0) + candidate.variance(kind) / np.maximum(
            n_t, 1.0
        )
        at = np.array(indices)
        self.estimate[at] = np.bincount(own, weight * (mean_t - mean_c), minlength=slots)
        self.se[at] = np.sqrt(np.bincount(own, weight * weight * var, minlength=slots))
        self.n[at] = total
        # Counts over every stratum, and a plain pooled difference for checks without a
        # usable one, as compare_strata reports them.
        self.n_control[at] = n_all_c = np.bincount(own, n_c, minlength=slots)
        self.n_candidate[at] = n_all_t = np.bincount(own, n_t, minlength=slots)
        pooled = np.where(
            (n_all_c > 0) & (n_all_t > 0),
            np.bincount(own, data[:, 4], minlength=slots) / np.maximum(n_all_t, 1.0)
            - np.bincount(own, data[:, 1], minlength=slots) / np.maximum(n_all_c, 1.0),
            0.0,
        )
        self.pooled[at] = pooled
        self.mean_control[at] = np.bincount(own, weight * mean_c, minlength=slots)
        self.mean_candidate[at] = np.bincount(own, weight * mean_t, minlength=slots)


def holm_reject(families: Sequence[Sequence[float]], alphas: Sequence[float]) -> list[list[bool]]:
    """Return, per family of p-values, which hypotheses Holm rejects at that family's alpha."""
    result: list[list[bool]] = [[] for _ in families]
    by_size: dict[int, list[int]] = defaultdict(list)
    for i, family in enumerate(families):
        if family:
            by_size[len(family)].append(i)
    for indices in by_size.values():
        adjusted = holm(np.array([families[i] for i in indices], dtype=float)).p_adjusted
        for row, i in enumerate(indices):
            result[i] = [bool(a <= alphas[i]) for a in adjusted[row]]
    return result


@dataclass(frozen=True)
class SrmInput:
    """Exposure counts of the arms whose share was constant over the step, and the shares."""

    arms: tuple[str, ...]
    observed: tuple[int, ...]
    weights: tuple[float, ...]
    threshold: float
    min_count: int


def srm_many(inputs: Sequence[SrmInput | None]) -> list[SrmResult | None]:
    """Return the sample-ratio test of each input (None where fewer than two arms)."""
    results: list[SrmResult | None] = [None] * len(inputs)
    groups: dict[tuple[int, float, int], list[int]] = defaultdict(list)
    for i, item in enumerate(inputs):
        if item is not None and len(item.arms) >= 2:
            groups[(len(item.arms), item.threshold, item.min_count)].append(i)
    for (_, threshold, min_count), indices in groups.items():
        batch = srm_tests(
            [inputs[i].observed for i in indices],  # type: ignore[union-attr]
            [inputs[i].weights for i in indices],  # type: ignore[union-attr]
            threshold=threshold,
            min_count=min_count,
        )
        for row, i in enumerate(indices):
            results[i] = SrmResult(
                float(batch.statistic[row]),
                float(batch.p_value[row]),
                bool(batch.mismatch[row]),
                bool(batch.enough_data[row]),
            )
    return results


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
