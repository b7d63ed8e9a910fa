"""Windows over time and the trend of a pattern's counts across them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm

from analytics.mining.trend import OUTSIDE, trend_statistics, window_index, window_starts

NOW = 1_700_000_000.0
WS = 3_600.0


def test_windows_are_half_open_ending_at_now_and_future_times_count_as_latest() -> None:
    times = np.array([NOW, NOW - 1, NOW - WS, NOW - WS - 1, NOW - 7 * WS + 1, NOW - 7 * WS,
                      NOW + 30, math.nan, -math.inf])
    got = window_index(times, now=NOW, window_seconds=WS, n_windows=7)
    assert got.tolist() == [6, 6, 5, 5, 0, OUTSIDE, 6, OUTSIDE, OUTSIDE]
    assert window_starts(now=NOW, window_seconds=WS, n_windows=3) == (
        NOW - 3 * WS, NOW - 2 * WS, NOW - WS)


def test_slope_is_the_least_squares_slope() -> None:
    counts = [3, 9, 4, 12, 7, 15, 11]
    slope, _ = trend_statistics(counts)
    assert slope == pytest.approx(np.polyfit(np.arange(7), counts, 1)[0])


def test_z_uses_the_regression_standard_error_when_counts_swing_beyond_chance() -> None:
    counts = [0, 40, 2, 38, 5, 45, 10]
    slope, z = trend_statistics(counts)
    fit = sm.OLS(np.asarray(counts, float), sm.add_constant(np.arange(7.0))).fit()
    assert z == pytest.approx(slope / fit.bse[1])


def test_a_perfectly_straight_line_gets_the_poisson_standard_error_not_infinity() -> None:
    slope, z = trend_statistics([10, 12, 14, 16, 18, 20, 22])
    assert slope == pytest.approx(2.0)
    assert z == pytest.approx(2.0 / math.sqrt(16.0 / 28.0))  # mean 16, Sxx 28


@pytest.mark.parametrize("counts", [[], [5], [0, 0, 0, 0], [4, 4, 4, 4, 4]])
def test_no_trend_gives_zero_z(counts: list[int]) -> None:
    slope, z = trend_statistics(counts)
    assert slope == pytest.approx(0.0) and z == pytest.approx(0.0)


def test_flat_poisson_counts_rarely_look_like_a_trend() -> None:
    rng = np.random.default_rng(31)
    reps = 2_000
    zs = np.array([trend_statistics(rng.poisson(20, size=7))[1] for _ in range(reps)])
    false_rate = float(np.mean(np.abs(zs) >= 2.0))
    nominal = 0.0455  # two-sided normal tail beyond 2; our standard error is never smaller
    assert false_rate <= nominal + 3 * math.sqrt(nominal * (1 - nominal) / reps)


def test_a_steadily_growing_complaint_is_detected() -> None:
    rng = np.random.default_rng(32)
    reps = 500
    expected = 10 + 3 * np.arange(7)  # z about 3.6 at the Poisson standard error
    zs = np.array([trend_statistics(rng.poisson(expected))[1] for _ in range(reps)])
    power = float(np.mean(zs >= 2.0))
    assert power >= 0.8
