"""The batched evaluation gives exactly what analytics gives one comparison at a time."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.compare import compare_strata
from analytics.moments import Moments
from analytics.multiple import holm
from analytics.srm import srm_test
from deploy.analysis import CheckTable, SrmInput, StatsCube, evaluate, holm_reject, srm_many
from deploy.stats import METRICS, ArmStats, MetricName


@st.composite
def proportion(draw: st.DrawFn) -> Moments:
    n = draw(st.integers(0, 3_000))
    return Moments.from_proportion(draw(st.integers(0, n)), n)


@st.composite
def values(draw: st.DrawFn) -> Moments:
    n = draw(st.integers(0, 3_000))
    mean = draw(st.floats(-5, 10))
    sd = draw(st.floats(0, 3))
    return Moments.from_summary(n, mean, sd)


@st.composite
def comparisons(
    draw: st.DrawFn,
) -> tuple[MetricName, list[tuple[Moments, Moments]], str, float, float, float]:
    metric: MetricName = draw(st.sampled_from(list(METRICS)))
    arm = proportion() if METRICS[metric].kind == "proportion" else values()
    strata = draw(st.lists(st.tuples(arm, arm), min_size=1, max_size=4))
    side = draw(st.sampled_from(["less", "greater"]))
    null = draw(st.floats(-0.2, 0.2))
    alpha = draw(st.sampled_from([0.01, 0.05, 0.1]))
    n_star = draw(st.sampled_from([500.0, 1_000.0, 20_000.0]))
    return metric, strata, side, null, alpha, n_star


def _stats(metric: MetricName, moments: Moments) -> ArmStats:
    """Return arm statistics holding ``moments`` as the metric's data (and nothing else)."""
    if metric == "correction_rate":
        return ArmStats(executions=moments.n, corrections=round(moments.total))
    field = {
        "success_rate": "success",
        "mean_score": "score",
        "error_rate": "errors",
        "latency": "log_latency",
        "cost": "cost",
    }[metric]
    return ArmStats(executions=max(moments.n, 1), **{field: moments})


def _table(cases: list, min_samples: tuple[int, ...] = ()) -> tuple[StatsCube, CheckTable]:
    table = CheckTable()
    deployments = []
    for d, (metric, strata, side, null, alpha, n_star) in enumerate(cases):
        deployments.append(
            [{"control": _stats(metric, c), "c1": _stats(metric, t)} for c, t in strata]
        )
        table.add(
            d,
            ("c1", 1),
            ("control", 0),
            [metric],
            [side],
            [null],
            alpha=alpha,
            n_star=n_star,
            min_samples=min_samples[d] if min_samples else 0,
        )
    return StatsCube(deployments, [("control", "c1")] * len(cases)), table


def _close(a: float, b: float) -> bool:
    return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(comparisons(), min_size=1, max_size=6))
def test_batched_bounds_equal_compare_strata_one_by_one(cases: list) -> None:
    cube, table = _table(cases)
    results = evaluate(cube, table)
    for i, (metric, strata, side, null, alpha, n_star) in enumerate(cases):
        spec = METRICS[metric]
        # compare_strata is handed the steps in which both arms have data, as the canary does.
        present = [(c, t) for c, t in strata if c.n and t.n]
        if not present:
            assert not results.enough[i]
            continue
        expected = compare_strata(
            present,
            kind=spec.kind,
            better=spec.better,
            alpha=alpha,
            side=side,  # type: ignore[arg-type]
            null=null,
            n_star=n_star,
        )
        bound = results.bound(i)
        assert bound.enough_data == expected.enough_data
        assert (bound.n_control, bound.n_candidate) == (expected.n_control, expected.n_candidate)
        assert _close(bound.estimate, expected.estimate)
        assert _close(bound.lower, expected.lower) and _close(bound.upper, expected.upper)
        assert _close(bound.p_value, expected.p_value)


def test_a_check_below_its_minimum_samples_cannot_conclude() -> None:
    strata = [(Moments.from_proportion(20, 20), Moments.from_proportion(0, 20))]
    cube, table = _table([("success_rate", strata, "less", 0.0, 0.05, 1_000.0)] * 2, (0, 30))
    results = evaluate(cube, table)
    assert results.enough[0] and results.rejects[0]
    assert not results.enough[1] and results.p_value[1] == 1.0


def test_evidence_rows_are_strict_json() -> None:
    strata = [(Moments.from_proportion(80, 100), Moments.from_proportion(70, 100))]
    cube, table = _table([("success_rate", strata, "less", 0.0, 0.05, 1_000.0)])
    row = evaluate(cube, table).row(0)
    assert row["upper"] is not None and row["lower"] is None  # one-sided: no lower bound
    assert json.loads(json.dumps(row, allow_nan=False)) == row


def test_holm_per_family_equals_analytics_holm() -> None:
    families = [[0.01, 0.04, 0.03], [0.2], [], [0.001, 0.5, 0.02], [0.011, 0.02, 0.9]]
    alphas = [0.05, 0.05, 0.05, 0.01, 0.05]
    weights = [[1.0, 1.0, 1.0], [1.0], [], [1.0, 1.0, 1.0], [0.8, 0.1, 0.1]]
    flat = [p for family in families for p in family]
    spans, start = [], 0
    for family in families:
        spans.append(range(start, start + len(family)))
        start += len(family)
    result = holm_reject(flat, spans, alphas, weights)
    for family, alpha, w, span, rejected in zip(
        families, alphas, weights, spans, result, strict=True
    ):
        expected = holm(family, alpha=alpha, weights=w).reject if family else []
        assert rejected == [i for i, r in zip(span, expected, strict=True) if r]
    # Weighted: 0.011 <= 0.8 * 0.05 first, then 0.02 <= (0.1 / 0.2) * 0.05; 0.9 stays.
    assert result[4] == [spans[4].start, spans[4].start + 1]


@pytest.mark.parametrize(
    ("observed", "weights"),
    [
        ((9_700, 300), (9_750.0, 250.0)),
        ((2_400, 2_600, 2_500), (1.0, 1.0, 1.0)),
        ((80, 20), (1, 1)),
    ],
)
def test_batched_srm_equals_srm_test(observed: tuple[int, ...], weights: tuple[float, ...]) -> None:
    item = SrmInput(("control", "c1", "c2")[: len(observed)], observed, weights, 0.001, 100)
    (result, missing) = srm_many([item, None])
    assert missing is None
    assert result == srm_test(observed, weights, threshold=0.001, min_count=100)
