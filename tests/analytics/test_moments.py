"""Streaming moments: stable variance, exact proportions, merging, and replayable folds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.moments import Moments


def test_variance_survives_a_mean_far_larger_than_the_spread() -> None:
    # Sum of squares minus squared sum cancels to 0 here in float64; Welford does not.
    values = [1e8 + 1, 1e8 - 1] * 500
    moments = Moments.from_values(values)
    assert moments.variance == pytest.approx(np.var(values, ddof=1), rel=1e-9)
    assert moments.variance == pytest.approx(1000 / 999, rel=1e-9)


def test_merging_two_streams_is_the_stable_variance_of_both() -> None:
    left, right = [1e9 + 0.5, 1e9 - 0.5, 1e9], [1e9 + 2.0, 1e9 - 2.0]
    merged = Moments.from_values(left) + Moments.from_values(right)
    assert merged.n == 5 and merged.mean == pytest.approx(1e9, rel=1e-15)
    assert merged.variance == pytest.approx(np.var(left + right, ddof=1), rel=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=60), st.integers(1, 59))
def test_merge_of_any_split_equals_the_whole_stream(values: list[float], cut: int) -> None:
    cut = min(cut, len(values) - 1)
    whole = Moments.from_values(values)
    merged = Moments.from_values(values[:cut]) + Moments.from_values(values[cut:])
    assert merged.n == whole.n
    assert merged.total == pytest.approx(whole.total, rel=1e-12, abs=1e-6)
    assert merged.m2 == pytest.approx(whole.m2, rel=1e-9, abs=1e-6)


def test_folding_one_observation_at_a_time_is_deterministic_bit_for_bit() -> None:
    # The service folds executions with ``add`` in log order; a replay must give the same
    # bits however the fold was cut into batches (each batch resumes from stored fields).
    rng = np.random.default_rng(5)
    values = rng.lognormal(7.0, 0.5, 2_000).tolist()
    live = Moments()
    for x in values:
        live = live.add(x)
    replayed, i = Moments(), 0
    for size in (1, 17, 500, 3, 1_479):
        stored = Moments(replayed.n, replayed.total, replayed.m2)  # a round trip through a row
        for x in values[i : i + size]:
            stored = stored.add(x)
        replayed, i = stored, i + size
    assert (live.n, live.total, live.m2) == (replayed.n, replayed.total, replayed.m2)


def test_proportion_moments_hold_the_count_and_its_spread() -> None:
    moments = Moments.from_proportion(30, 40)
    assert (moments.n, moments.total, moments.m2) == (40, 30.0, 30 * 10 / 40)
    added = Moments.from_values([1.0] * 30 + [0.0] * 10)
    assert added.variance == pytest.approx(moments.variance, rel=1e-12)
    assert Moments.from_proportion(0, 0) == Moments()


def test_summary_constructor_gives_that_mean_and_sample_sd() -> None:
    moments = Moments.from_summary(50, 3.0, 2.0)
    assert moments.mean == 3.0 and math.sqrt(moments.variance) == pytest.approx(2.0)


def test_bad_moments_are_refused() -> None:
    with pytest.raises(ValueError, match="n must be >= 0"):
        Moments(-1, 0.0, 0.0)
    with pytest.raises(ValueError, match="m2 must be >= 0"):
        Moments(3, 1.0, -0.5)
    with pytest.raises(ValueError, match="finite"):
        Moments(2, math.inf, 0.0)
