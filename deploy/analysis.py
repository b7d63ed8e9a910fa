"""The canary's analysis tick, vectorised: many deployments at once.

A tick lays every deployment's per-stratum, per-arm moments into one array (``StatsCube``),
plans its one-sided comparisons as columns (``CheckTable``), and hands all of them to
``analytics.batch.compare_strata_batch``, the one implementation of the post-stratified
difference and its always-valid bounds (held equal to ``analytics.compare.compare_strata``
by the tests). Calling ``compare_strata`` once per check would cost ~100 us each, and a
tick over a thousand deployments seconds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import NamedTuple

import numpy as np

from analytics.batch import MomentsArray, compare_strata_batch
from analytics.compare import describe
from analytics.multiple import holm
from analytics.srm import SrmResult, srm_tests
from deploy.stats import METRICS, ArmStats, MetricName

METRIC_ORDER: tuple[MetricName, ...] = tuple(METRICS)
METRIC_INDEX = {name: i for i, name in enumerate(METRIC_ORDER)}
_PROPORTION = np.array([METRICS[m].kind == "proportion" for m in METRIC_ORDER])


class StatsCube:
    """Moments (n, total, m2) indexed [deployment, stratum, arm, metric].

    A deployment's strata are listed in ascending order; its arms are indexed in the order
    ``arms`` lists them. Missing cells are empty (n = 0).
    """

    def __init__(
        self, deployments: Sequence[Sequence[Mapping[str, ArmStats]]], arms: Sequence[Sequence[str]]
    ) -> None:
        strata = max((len(steps) for steps in deployments), default=0)
        width = max((len(names) for names in arms), default=0)
        self.data = np.zeros(
            (len(deployments), max(strata, 1), max(width, 1), len(METRIC_ORDER), 3)
        )
        cells: list[ArmStats] = []
        at: list[int] = []
        for d, (steps, names) in enumerate(zip(deployments, arms, strict=True)):
            for s, by_arm in enumerate(steps):
                for a, name in enumerate(names):
                    stats = by_arm.get(name)
                    if stats is not None and stats.executions:
                        cells.append(stats)
                        at += (d, s, a)
        if cells:
            d_idx, s_idx, a_idx = np.array(at).reshape(-1, 3).T
            width = 3 * len(METRIC_ORDER)
            flat = np.fromiter(
                chain.from_iterable(map(ArmStats.moments_row, cells)),
                dtype=float,
                count=width * len(cells),
            )
            self.data[d_idx, s_idx, a_idx] = flat.reshape(len(cells), -1, 3)

    def counts(self) -> list[list[list[float]]]:
        """Return observations per [deployment][arm][metric], summed over strata."""
        return self.data[..., 0].sum(axis=1).tolist()


class CheckTable:
    """Planned one-sided comparisons of an arm against a base arm, as columns.

    A tick plans ~10,000 of them; columns keep that to a few list extends per arm and
    hand numpy its inputs directly. ``side`` is the alternative: "less" means the delta
    (arm - base) lies below ``null``, "greater" above it.
    """

    def __init__(self) -> None:
        self.deployment: list[int] = []  # index into the StatsCube
        self.arm: list[str] = []
        self.arm_index: list[int] = []
        self.base: list[str] = []
        self.base_index: list[int] = []
        self.metric: list[MetricName] = []
        self.side: list[str] = []
        self.null: list[float] = []
        self.alpha: list[float] = []
        self.n_star: list[float] = []
        self.min_samples: list[int] = []  # per arm, over all strata, before concluding

    def __len__(self) -> int:
        return len(self.metric)

    def add(
        self,
        deployment: int,
        arm: tuple[str, int],
        base: tuple[str, int],
        metrics: Sequence[MetricName],
        sides: Sequence[str],
        nulls: Sequence[float],
        *,
        alpha: float,
        n_star: float,
        min_samples: int,
    ) -> range:
        """Return the positions of new checks, one per metric, of ``arm`` against ``base``."""
        start, k = len(self.metric), len(metrics)
        self.deployment += [deployment] * k
        self.arm += [arm[0]] * k
        self.arm_index += [arm[1]] * k
        self.base += [base[0]] * k
        self.base_index += [base[1]] * k
        self.metric += metrics
        self.side += sides
        self.null += nulls
        self.alpha += [alpha] * k
        self.n_star += [n_star] * k
        self.min_samples += [min_samples] * k
        return range(start, start + k)


@dataclass(frozen=True)
class Bound:
    """The outcome of one check: post-stratified estimate, always-valid bound, p-value."""

    arm: str
    base: str
    metric: MetricName
    side: str
    null: float
    alpha: float
    estimate: float
    lower: float
    upper: float
    p_value: float
    enough_data: bool
    n_control: int  # the base arm's observations
    n_candidate: int
    mean_control: float
    mean_candidate: float

    @property
    def rejects(self) -> bool:
        """Return whether the data reject the null toward the alternative at alpha."""
        return self.enough_data and self.p_value <= self.alpha

    def reading(self) -> str:
        """Return the plain-English line analytics gives this comparison."""
        if not self.enough_data:
            return f"not enough data yet ({self.n_control} vs {self.n_candidate})"
        spec = METRICS[self.metric]
        return describe(
            spec.kind,
            spec.better,
            self.alpha,
            self.side,  # type: ignore[arg-type]
            self.null,
            self.estimate,
            self.mean_control,
            self.mean_candidate,
            self.lower,
            self.upper,
            self.p_value,
            sequential=True,
        )


class Results:
    """The outcomes of a ``CheckTable``, as columns; ``bound(i)`` gives one as a ``Bound``.

    Columns rather than one object per check: only a handful end up in a reason, and the
    evidence rows (``json``) are built in one pass.
    """

    def __init__(
        self,
        table: CheckTable,
        estimate: list[float],
        lower: list[float],
        upper: list[float],
        p_value: list[float],
        enough: list[bool],
        n_control: list[int],
        n_candidate: list[int],
        mean_control: list[float],
        mean_candidate: list[float],
    ) -> None:
        self.table = table
        self.estimate, self.lower, self.upper = estimate, lower, upper
        self.p_value, self.enough = p_value, enough
        self.n_control, self.n_candidate = n_control, n_candidate
        self.mean_control, self.mean_candidate = mean_control, mean_candidate
        self.rejects = [
            p <= a and ok for a, p, ok in zip(table.alpha, p_value, enough, strict=True)
        ]
        self.json = [
            {
                "n_control": n_c,
                "n_candidate": n_t,
                "estimate": est,
                "lower": lo if lo != -math.inf else None,
                "upper": hi if hi != math.inf else None,
                "p": p,
                "null": null,
                "side": side,
                "enough_data": ok,
            }
            for n_c, n_t, est, lo, hi, p, null, side, ok in zip(
                n_control, n_candidate, estimate, lower, upper, p_value, table.null,
                table.side, enough, strict=True,
            )
        ]  # fmt: skip

    def bound(self, i: int) -> Bound:
        """Return the outcome of check ``i`` as one object."""
        t = self.table
        return Bound(
            t.arm[i], t.base[i], t.metric[i], t.side[i], t.null[i], t.alpha[i],
            self.estimate[i], self.lower[i], self.upper[i], self.p_value[i], self.enough[i],
            self.n_control[i], self.n_candidate[i], self.mean_control[i],
            self.mean_candidate[i],
        )  # fmt: skip


def evaluate(cube: StatsCube, table: CheckTable) -> Results:
    """Return the outcome of every planned check, computed with array operations."""
    count = len(table)
    if not count:
        return Results(table, [], [], [], [], [], [], [], [], [])
    d = np.array(table.deployment)
    metric = np.array([METRIC_INDEX[m] for m in table.metric])
    control = cube.data[d, :, np.array(table.base_index), metric]  # (checks, strata, 3)
    candidate = cube.data[d, :, np.array(table.arm_index), metric]
    proportion = _PROPORTION[metric]
    alpha, null = np.array(table.alpha), np.array(table.null)
    n_star, least = np.array(table.n_star), np.array(table.min_samples, dtype=float)
    names = ("estimate", "lower", "upper", "p", "n_c", "n_t", "mean_c", "mean_t")
    out = {name: np.zeros(count) for name in names}
    enough = np.zeros(count, dtype=bool)
    greater = np.array([side == "greater" for side in table.side])
    for side, chosen in (("greater", greater), ("less", ~greater)):
        at = np.flatnonzero(chosen)
        if not at.size:
            continue
        c, t = control[at], candidate[at]
        batch = compare_strata_batch(
            MomentsArray(c[..., 0], c[..., 1], c[..., 2]),
            MomentsArray(t[..., 0], t[..., 1], t[..., 2]),
            kind=proportion[at],
            alpha=alpha[at],
            side=side,  # type: ignore[arg-type]
            null=null[at],
            n_star=n_star[at],
            min_samples=least[at],
        )
        diff = batch.difference
        assert diff is not None
        out["estimate"][at], out["lower"][at] = batch.estimate, batch.lower
        out["upper"][at], out["p"][at] = batch.upper, batch.p_value
        enough[at] = batch.enough_data
        out["n_c"][at], out["n_t"][at] = diff.n_control, diff.n_candidate
        out["mean_c"][at], out["mean_t"][at] = diff.mean_control, diff.mean_candidate
    return Results(
        table,
        out["estimate"].tolist(),
        out["lower"].tolist(),
        out["upper"].tolist(),
        out["p"].tolist(),
        enough.tolist(),
        out["n_c"].astype(int).tolist(),
        out["n_t"].astype(int).tolist(),
        out["mean_c"].tolist(),
        out["mean_t"].tolist(),
    )


def holm_reject(
    families: Sequence[Sequence[float]],
    alphas: Sequence[float],
    weights: Sequence[Sequence[float]] | None = None,
) -> list[list[bool]]:
    """Return, per family of p-values, which hypotheses (weighted) Holm rejects at that
    family's alpha; ``weights`` gives each family's Holm weights (None: equal)."""
    result: list[list[bool]] = [[] for _ in families]
    by_shape: dict[tuple[float, ...], list[int]] = defaultdict(list)
    for i, family in enumerate(families):
        if family:
            shape = tuple(weights[i]) if weights is not None else (1.0,) * len(family)
            by_shape[shape].append(i)
    for shape, indices in by_shape.items():
        p = np.array([families[i] for i in indices], dtype=float)
        adjusted = holm(p, weights=np.array(shape)).p_adjusted
        limits = np.array([alphas[i] for i in indices])[:, None]
        for i, row in zip(indices, (adjusted <= limits).tolist(), strict=True):
            result[i] = row
    return result


class SrmInput(NamedTuple):
    """Exposure counts of the current stratum's arms, their expected shares, and the unit
    counted ("subjects", "assignments" or "executions")."""

    arms: tuple[str, ...]
    observed: tuple[int, ...]
    weights: tuple[float, ...]
    threshold: float
    min_count: int
    unit: str = "subjects"


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
