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
from functools import cached_property
from itertools import starmap
from struct import Struct
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
_SIDE_NAMES = np.array(["two-sided", "greater", "less"])
_ROW = Struct(f"{3 * len(METRIC_ORDER) + 3}d")  # ArmStats.moments_row
_BLOCK = Struct("7d")  # CheckTable.blocks
_SIDE_CODE = {name: i for i, name in enumerate(_SIDE_NAMES.tolist())}


class StatsCube:
    """Moments as three arrays ``n``, ``total``, ``m2`` indexed [deployment, stratum, arm,
    metric], and exposure counts (subjects, assignments, executions) indexed [deployment,
    stratum, arm].

    A deployment's strata are listed in ascending order; its arms are indexed in the order
    ``arms`` lists them. Missing cells are empty (n = 0). Each moment is its own contiguous
    array, so gathering one for thousands of checks, or summing it over strata, reads
    memory in order.
    """

    def __init__(
        self, deployments: Sequence[Sequence[Mapping[str, ArmStats]]], arms: Sequence[Sequence[str]]
    ) -> None:
        strata = max((len(steps) for steps in deployments), default=0)
        width = max((len(names) for names in arms), default=0)
        shape = (len(deployments), max(strata, 1), max(width, 1))
        self.strata = shape[1]
        self.n, self.total, self.m2 = (np.zeros((*shape, len(METRIC_ORDER))) for _ in range(3))
        self.exposures = np.zeros((*shape, 3))
        rows: list[bytes] = []
        at: list[int] = []
        # struct packs a row of mixed ints and floats in one C call; np.fromiter
        # converts each int separately, several times slower over ~150,000 values.
        pack = _ROW.pack
        for d, (steps, names) in enumerate(zip(deployments, arms, strict=True)):
            for s, by_arm in enumerate(steps):
                for a, name in enumerate(names):
                    stats = by_arm.get(name)
                    if stats is not None:
                        rows.append(pack(*stats.moments_row()))
                        at += (d, s, a)
        if rows:
            d_idx, s_idx, a_idx = np.fromiter(at, dtype=np.intp, count=len(at)).reshape(-1, 3).T
            width = 3 * len(METRIC_ORDER) + 3
            flat = np.frombuffer(b"".join(rows), dtype=float).reshape(len(rows), width)
            moments = flat[:, 3:].reshape(len(rows), -1, 3)
            self.n[d_idx, s_idx, a_idx] = moments[..., 0]
            self.total[d_idx, s_idx, a_idx] = moments[..., 1]
            self.m2[d_idx, s_idx, a_idx] = moments[..., 2]
            self.exposures[d_idx, s_idx, a_idx] = flat[:, :3]

    def gather(self, d: np.ndarray, arm: np.ndarray, metric: np.ndarray) -> MomentsArray:
        """Return the moments of (deployment, arm, metric) triples, [triple, stratum]."""
        return MomentsArray(
            self.n[d, :, arm, metric], self.total[d, :, arm, metric], self.m2[d, :, arm, metric]
        )

    def summary(self, metric: Sequence[int], step: np.ndarray) -> CubeSummary:
        """Return what a tick reads per deployment besides the comparisons: each arm's
        observations of the deployment's ``metric`` (its primary) over all strata and
        over the strata ``step`` marks (bool, [deployment, stratum]: the current step);
        control's (arm 0) observations and mean of every metric."""
        rows = np.arange(self.n.shape[0])
        primary = self.n[rows, :, :, np.asarray(metric, dtype=int)]  # [deployment, stratum, arm]
        control_n = self.n[:, :, 0].sum(axis=1)
        control_mean = self.total[:, :, 0].sum(axis=1) / np.maximum(control_n, 1.0)
        return CubeSummary(
            samples=primary.sum(axis=1).tolist(),
            step_samples=(primary * step[:, :, None]).sum(axis=1).tolist(),
            control_n=control_n.tolist(),
            control_mean=control_mean.tolist(),
        )

    def exposures_at(self, positions: Sequence[int]) -> list[list[list[float]]]:
        """Return (subjects, assignments, executions) per [deployment][arm] in the stratum
        at each deployment's position (-1: none, all zero)."""
        at = np.asarray(positions, dtype=int)
        picked = self.exposures[np.arange(len(at)), np.maximum(at, 0)]
        return np.where((at >= 0)[:, None, None], picked, 0.0).tolist()


class CubeSummary(NamedTuple):
    """Per-deployment sums a tick reads from the cube (see ``StatsCube.summary``)."""

    samples: list[list[float]]  # [deployment][arm]
    step_samples: list[list[float]]  # [deployment][arm]
    control_n: list[list[float]]  # [deployment][metric]
    control_mean: list[list[float]]  # [deployment][metric]


class CheckTable:
    """Planned one-sided comparisons of an arm against a base arm, as columns.

    A tick plans ~10,000 of them. Each ``add`` is one block (an arm against a base, on one
    or several metrics) sharing deployment, arms, alpha, tuning and minimum samples; only
    metric, side and null are per check. A block is two appends, and ``evaluate`` expands
    the blocks with numpy. ``side`` is the alternative: "less" means the delta (arm - base)
    lies below ``null``, "greater" above it.
    """

    def __init__(self) -> None:
        # Per check.
        self.metric: list[MetricName] = []
        self.side: list[str] = []
        self.null: list[float] = []
        # Per block: (deployment, arm index, base index, alpha, n_star, min_samples, size),
        # the deployment being its index in the StatsCube, and (arm, base) names.
        self.blocks: list[tuple[float, ...]] = []
        self.names: list[tuple[str, str]] = []
        self._block_of: list[int] | None = None

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
        start = len(self.metric)
        self.metric += metrics
        self.side += sides
        self.null += nulls
        self.blocks.append(
            (deployment, arm[1], base[1], alpha, n_star, min_samples, len(metrics))
        )
        self.names.append((arm[0], base[0]))
        self._block_of = None
        return range(start, len(self.metric))

    def columns(self) -> dict[str, np.ndarray]:
        """Return every per-block value repeated for each check of its block, by name."""
        packed = b"".join(starmap(_BLOCK.pack, self.blocks))
        blocks = np.frombuffer(packed, dtype=float).reshape(-1, 7)
        size = blocks[:, 6].astype(int)
        names = ("deployment", "arm_index", "base_index", "alpha", "n_star", "min_samples")
        return {name: np.repeat(blocks[:, i], size) for i, name in enumerate(names)}

    def block_of(self, i: int) -> int:
        """Return the block that check ``i`` belongs to."""
        if self._block_of is None:
            size = [int(b[6]) for b in self.blocks]
            self._block_of = np.repeat(np.arange(len(size)), size).tolist()
        return self._block_of[i]

    def pair(self, i: int) -> tuple[str, str]:
        """Return (arm, base) of check ``i``."""
        return self.names[self.block_of(i)]

    def alpha(self, i: int) -> float:
        """Return the alpha check ``i`` runs at."""
        return float(self.blocks[self.block_of(i)][3])


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

    Columns rather than one object per check: only a handful end up in a reason, and an
    evidence row (``row``) is built only for the checks a decision reports. The columns
    stay numpy arrays until first read as lists (``estimate`` ... ``n_candidate``): a lean
    tick reads few of them, and ~100,000 Python floats a tick are worth not making.
    """

    def __init__(self, table: CheckTable, columns: dict[str, np.ndarray]) -> None:
        self.table = table
        self.columns = columns
        self.p_array = columns["p"]
        # p <= the check's alpha, with enough data; read for every planned conclusion.
        self.rejects: list[bool] = columns["rejects"].tolist()
        self.enough: list[bool] = columns["enough"].tolist()

    @cached_property
    def estimate(self) -> list[float]:
        """Return each check's estimate (post-stratified, or pooled without enough data)."""
        return self.columns["estimate"].tolist()

    @cached_property
    def lower(self) -> list[float]:
        """Return each check's lower bound (-inf when one-sided above or no data)."""
        return self.columns["lower"].tolist()

    @cached_property
    def upper(self) -> list[float]:
        """Return each check's upper bound (+inf when one-sided below or no data)."""
        return self.columns["upper"].tolist()

    @cached_property
    def p_value(self) -> list[float]:
        """Return each check's always-valid p-value."""
        return self.p_array.tolist()

    @cached_property
    def n_control(self) -> list[int]:
        """Return each check's base-arm observations."""
        return self.columns["n_c"].astype(int).tolist()

    @cached_property
    def n_candidate(self) -> list[int]:
        """Return each check's arm observations."""
        return self.columns["n_t"].astype(int).tolist()

    def row(self, i: int) -> dict[str, object]:
        """Return check ``i`` as a strict-JSON evidence row."""
        lower, upper = self.lower[i], self.upper[i]
        return {
            "n_control": self.n_control[i],
            "n_candidate": self.n_candidate[i],
            "estimate": self.estimate[i],
            "lower": lower if lower != -math.inf else None,
            "upper": upper if upper != math.inf else None,
            "p": self.p_value[i],
            "null": self.table.null[i],
            "side": self.table.side[i],
            "enough_data": self.enough[i],
        }

    def rows(self, span: range) -> dict[str, dict[str, object]]:
        """Return the evidence rows of a span of checks on distinct metrics, by metric."""
        t = self.table
        metric, null, side = t.metric, t.null, t.side
        n_c, n_t, est, p = self.n_control, self.n_candidate, self.estimate, self.p_value
        lower, upper, enough = self.lower, self.upper, self.enough
        inf = math.inf
        return {
            metric[i]: {
                "n_control": n_c[i],
                "n_candidate": n_t[i],
                "estimate": est[i],
                "lower": lower[i] if lower[i] != -inf else None,
                "upper": upper[i] if upper[i] != inf else None,
                "p": p[i],
                "null": null[i],
                "side": side[i],
                "enough_data": enough[i],
            }
            for i in span
        }

    def bound(self, i: int) -> Bound:
        """Return the outcome of check ``i`` as one object."""
        t = self.table
        arm, base = t.pair(i)
        return Bound(
            arm, base, t.metric[i], t.side[i], t.null[i], t.alpha(i),
            self.estimate[i], self.lower[i], self.upper[i], self.p_value[i], self.enough[i],
            self.n_control[i], self.n_candidate[i], float(self.columns["mean_c"][i]),
            float(self.columns["mean_t"][i]),
        )  # fmt: skip


def evaluate(cube: StatsCube, table: CheckTable) -> Results:
    """Return the outcome of every planned check, computed with array operations."""
    count = len(table)
    if not count:
        empty = np.zeros(0)
        names = ("estimate", "lower", "upper", "p", "n_c", "n_t", "mean_c", "mean_t")
        return Results(table, {
            **{name: empty for name in names},
            "enough": empty.astype(bool), "rejects": empty.astype(bool),
        })
    col = table.columns()
    d = col["deployment"].astype(int)
    metric = np.fromiter(map(METRIC_INDEX.__getitem__, table.metric), dtype=int, count=count)
    control = cube.gather(d, col["base_index"].astype(int), metric)  # [check, stratum]
    candidate = cube.gather(d, col["arm_index"].astype(int), metric)
    proportion = _PROPORTION[metric]
    alpha, null = col["alpha"], np.fromiter(table.null, dtype=float, count=count)
    n_star, least = col["n_star"], col["min_samples"]
    batch = compare_strata_batch(
        control,
        candidate,
        kind=proportion,
        alpha=alpha,
        side=_SIDE_NAMES[
            np.fromiter(map(_SIDE_CODE.__getitem__, table.side), dtype=np.intp, count=count)
        ],
        null=null,
        n_star=n_star,
        min_samples=least,
    )
    diff = batch.difference
    assert diff is not None
    return Results(table, {
        "estimate": batch.estimate, "lower": batch.lower, "upper": batch.upper,
        "p": batch.p_value, "n_c": diff.n_control, "n_t": diff.n_candidate,
        "mean_c": diff.mean_control, "mean_t": diff.mean_candidate,
        "enough": batch.enough_data, "rejects": batch.enough_data & (batch.p_value <= alpha),
    })


def holm_reject(
    p_values: Sequence[float],
    spans: Sequence[range],
    alphas: Sequence[float],
    weights: Sequence[Sequence[float]],
) -> list[list[int]]:
    """Return, per family (a span of ``p_values``), the positions weighted Holm rejects at
    that family's alpha with that family's weights (``analytics.multiple.holm``).

    Families of one shape are adjusted as the rows of one matrix.
    """
    result: list[list[int]] = [[] for _ in spans]
    groups: dict[tuple[float, ...], list[int]] = defaultdict(list)
    for i, span in enumerate(spans):
        if span:
            groups[tuple(weights[i])].append(i)
    p = np.asarray(p_values, dtype=float)
    for shape, members in groups.items():
        starts = np.array([spans[i].start for i in members])
        at = starts[:, None] + np.arange(len(shape))
        adjusted = holm(p[at], weights=np.array(shape)).p_adjusted
        rejected = adjusted <= np.array([alphas[i] for i in members])[:, None]
        for row in np.flatnonzero(rejected.any(axis=1)).tolist():
            result[members[row]] = at[row][rejected[row]].tolist()
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
        for i, *result in zip(
            indices, batch.statistic.tolist(), batch.p_value.tolist(),
            batch.mismatch.tolist(), batch.enough_data.tolist(), strict=True,
        ):
            results[i] = SrmResult(*result)
    return results
