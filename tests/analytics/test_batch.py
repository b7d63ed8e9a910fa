"""The vectorised engine: every post-stratified comparison equals the scalar one."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.batch import MomentsArray, compare_strata_batch, stratified_differences
from analytics.compare import compare_strata
from analytics.estimates import stratified_difference
from analytics.moments import Moments

KINDS = ("proportion", "mean", "log_mean")


@st.composite
def arm(draw: st.DrawFn, kind: str) -> Moments:
    n = draw(st.integers(0, 2_000))
    if kind == "proportion":
        return Moments.from_proportion(draw(st.integers(0, n)), n)
    return Moments.from_summary(n, draw(st.floats(-5, 10)), draw(st.floats(0, 3)))


@st.composite
def comparison(draw: st.DrawFn) -> tuple[str, list[tuple[Moments, Moments]], str, float, float]:
    kind = draw(st.sampled_from(KINDS))
    strata = draw(st.lists(st.tuples(arm(kind), arm(kind)), min_size=1, max_size=4))
    side = draw(st.sampled_from(["two-sided", "greater", "less"]))
    return kind, strata, side, draw(st.floats(-0.2, 0.2)), draw(st.sampled_from([0.01, 0.05]))


def _arrays(rows: list[list[tuple[Moments, Moments]]]) -> tuple[MomentsArray, MomentsArray]:
    width = max(len(r) for r in rows)
    padded = [r + [(Moments(), Moments())] * (width - len(r)) for r in rows]

    def field(i: int, name: str) -> np.ndarray:
        return np.array([[getattr(pair[i], name) for pair in r] for r in padded], dtype=float)

    return (
        MomentsArray(field(0, "n"), field(0, "total"), field(0, "m2")),
        MomentsArray(field(1, "n"), field(1, "total"), field(1, "m2")),
    )


def _close(a: float, b: float) -> bool:
    return a == b or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


@settings(max_examples=80, deadline=None)
@given(st.lists(comparison(), min_size=1, max_size=8), st.sampled_from([None, 400.0, 9_000.0]))
def test_batch_equals_compare_strata_comparison_by_comparison(
    cases: list[tuple[str, list[tuple[Moments, Moments]], str, float, float]],
    n_star: float | None,
) -> None:
    for side in ("two-sided", "greater", "less"):
        chosen = [c for c in cases if c[2] == side]
        if not chosen:
            continue
        control, candidate = _arrays([c[1] for c in chosen])
        batch = compare_strata_batch(
            control, candidate, kind=np.array([c[0] for c in chosen]), side=side,  # type: ignore[arg-type]
            alpha=np.array([c[4] for c in chosen]), null=np.array([c[3] for c in chosen]),
            n_star=n_star,
        )
        for i, (kind, strata, _, null, alpha) in enumerate(chosen):
            present = [(c, t) for c, t in strata if c.n and t.n]
            if not present:
                assert not batch.enough_data[i]
                continue
            one = compare_strata(present, kind=kind, side=side, null=null, alpha=alpha,  # type: ignore[arg-type]
                                 n_star=n_star)
            assert bool(batch.enough_data[i]) == one.enough_data
            assert _close(batch.estimate[i], one.estimate)
            assert _close(batch.lower[i], one.lower) and _close(batch.upper[i], one.upper)
            assert _close(batch.p_value[i], one.p_value)


@pytest.mark.parametrize("kind", KINDS)
def test_batched_difference_equals_stratified_difference(kind: str) -> None:
    rng = np.random.default_rng(81)
    rows = []
    for _ in range(40):
        strata = []
        for _ in range(3):
            n_c, n_t = int(rng.integers(2, 3_000)), int(rng.integers(2, 300))
            if kind == "proportion":
                pair = (Moments.from_proportion(int(rng.binomial(n_c, 0.8)), n_c),
                        Moments.from_proportion(int(rng.binomial(n_t, 0.78)), n_t))
            else:
                pair = (Moments.from_values(rng.normal(6, 1, n_c)),
                        Moments.from_values(rng.normal(6.1, 1.2, n_t)))
            strata.append(pair)
        rows.append(strata)
    control, candidate = _arrays(rows)
    batch = stratified_differences(control, candidate, kind)  # type: ignore[arg-type]
    for i, strata in enumerate(rows):
        one = stratified_difference(strata, kind)  # type: ignore[arg-type]
        assert one is not None
        for name in ("estimate", "se", "n", "effective_n", "mean_control", "mean_candidate"):
            assert getattr(batch, name)[i] == pytest.approx(getattr(one, name), rel=1e-12), name


def test_a_boolean_proportion_mask_is_the_same_as_naming_the_kinds() -> None:
    control = MomentsArray.from_proportions(np.array([[80.0, 700.0]]), np.array([[100.0, 1e3]]))
    candidate = MomentsArray.from_proportions(np.array([[7.0, 690.0]]), np.array([[10.0, 1e3]]))
    by_name = stratified_differences(control, candidate, np.array(["proportion"]))
    by_mask = stratified_differences(control, candidate, np.array([True]))
    assert by_name.estimate[0] == by_mask.estimate[0] and by_name.se[0] == by_mask.se[0]


def test_unknown_kinds_and_missing_strata_axis_are_refused() -> None:
    flat = MomentsArray.from_proportions(np.array([1.0]), np.array([2.0]))
    with pytest.raises(ValueError, match="strata axis"):
        stratified_differences(
            MomentsArray(np.array(1.0), np.array(1.0), np.array(0.0)),
            MomentsArray(np.array(1.0), np.array(1.0), np.array(0.0)), "mean",
        )
    with pytest.raises(ValueError, match="unknown metric kinds"):
        stratified_differences(flat, flat, np.array(["ratio"]))
