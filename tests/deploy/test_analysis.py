"""The batched evaluation gives exactly what analytics gives one comparison at a time."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.compare import compare_strata
from analytics.moments import Moments
from analytics.multiple import holm
from analytics.srm import srm_test
from deploy.analysis import Check, SrmInput, evaluate, holm_reject, srm_many
from deploy.stats import METRICS, MetricName


@st.composite
def proportion(draw: st.DrawFn) -> Moments:
    n = draw(st.integers(0, 3_000))
    return Moments.from_proportion(draw(st.integers(0, n)), n)


@st.composite
def values(draw: st.DrawFn) -> Moments:
    n = draw(st.integers(0, 3_000))
    mean = draw(st.floats(-5, 10))
    sd = draw(st.floats(0, 3))
    return Moments(n, n * mean, (n - 1) * sd * sd + n * mean * mean) if n else Moments()


@st.composite
def checks(draw: st.DrawFn) -> Check:
    metric: MetricName = draw(st.sampled_from(list(METRICS)))
    arm = proportion() if METRICS[metric].kind == "proportion" else values()
    strata = draw(st.lists(st.tuples(arm, arm), min_size=1, max_size=4))
    return Check(
        arm="c1",
        base="control",
        metric=metric,
        side=draw(st.sampled_from(["less", "greater"])),
        null=draw(st.floats(-0.2, 0.2)),
        alpha=draw(st.sampled_from([0.01, 0.05, 0.1])),
        n_star=draw(st.sampled_from([None, 500.0, 20_000.0])),
        strata=tuple(strata),
    )


def _close(a: float, b: float) -> bool:
    return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(checks(), min_size=1, max_size=6))
def test_batched_bounds_equal_compare_strata_one_by_one(planned: list[Check]) -> None:
    for check, bound in zip(planned, evaluate(planned), strict=True):
        spec = METRICS[check.metric]
        expected = compare_strata(
            list(check.strata),
            kind=spec.kind,
            better=spec.better,
            alpha=check.alpha,
            side=check.side,  # type: ignore[arg-type]
            null=check.null,
            n_star=check.n_star,
        )
        assert bound.enough_data == expected.enough_data
        assert (bound.n_control, bound.n_candidate) == (expected.n_control, expected.n_candidate)
        assert _close(bound.estimate, expected.estimate)
        assert _close(bound.lower, expected.lower) and _close(bound.upper, expected.upper)
        assert _close(bound.p_value, expected.p_value)


def test_a_check_below_its_minimum_samples_cannot_conclude() -> None:
    strata = ((Moments.from_proportion(20, 20), Moments.from_proportion(0, 20)),)
    base = Check("c1", "control", "success_rate", "less", 0.0, 0.05, None, strata)
    judged, guarded = evaluate([base, base._replace(min_samples=30)])
    assert judged.enough_data and judged.rejects
    assert not guarded.enough_data and guarded.p_value == 1.0


def test_holm_per_family_equals_analytics_holm() -> None:
    families = [[0.01, 0.04, 0.03], [0.2], [], [0.001, 0.5, 0.02]]
    alphas = [0.05, 0.05, 0.05, 0.01]
    result = holm_reject(families, alphas)
    for family, alpha, rejected in zip(families, alphas, result, strict=True):
        if family:
            assert rejected == holm(family, alpha=alpha).reject.tolist()
        else:
            assert rejected == []


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
