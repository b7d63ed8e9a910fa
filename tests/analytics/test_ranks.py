"""Mann-Whitney U agrees with scipy; Hodges-Lehmann and its interval agree with brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analytics.ranks import hodges_lehmann, kth_pairwise_difference, mann_whitney


@pytest.mark.parametrize("side", ["two-sided", "greater", "less"])
def test_mann_whitney_u_and_p_match_scipy_asymptotic_with_ties(side: str) -> None:
    rng = np.random.default_rng(21)
    for _ in range(15):
        # Rounded log-normal latencies: skewed, and full of ties.
        control = np.round(rng.lognormal(3.0, 0.6, size=rng.integers(5, 300)))
        candidate = np.round(rng.lognormal(3.1, 0.6, size=rng.integers(5, 300)))
        ours = mann_whitney(control, candidate, side=side)
        ref = stats.mannwhitneyu(candidate, control, alternative=side, method="asymptotic")
        assert ours.u == pytest.approx(ref.statistic, rel=1e-12)
        assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-12)


def test_mann_whitney_p_is_one_when_every_value_is_tied() -> None:
    assert mann_whitney([2.0] * 5, [2.0] * 7).p_value == 1.0


def test_kth_pairwise_difference_matches_sorting_every_difference() -> None:
    rng = np.random.default_rng(22)
    for size in ((3, 4), (40, 70), (150, 130)):
        control = np.sort(np.round(rng.normal(0, 5, size[0])))  # ties on purpose
        candidate = np.sort(np.round(rng.normal(1, 5, size[1])))
        every = np.sort(np.subtract.outer(candidate, control).ravel())
        for k in {1, 2, every.size // 3, every.size // 2, every.size - 1, every.size}:
            assert kth_pairwise_difference(control, candidate, k) == every[k - 1]


def test_kth_pairwise_difference_resolves_thousands_of_identical_differences() -> None:
    control = np.array([0.0] * 50 + [1.0] * 50)
    candidate = np.zeros(100)
    assert kth_pairwise_difference(control, candidate, 5_000) == -1.0
    assert kth_pairwise_difference(control, candidate, 5_001) == 0.0
    assert kth_pairwise_difference(control, candidate, 10_000) == 0.0


def test_kth_pairwise_difference_returns_a_tied_difference_itself_not_a_nearby_threshold() -> None:
    control = np.zeros(100)
    candidate = np.repeat([0.1, 0.73, 0.9], 50)  # 5,000 identical differences each
    assert kth_pairwise_difference(control, candidate, 7_000) == 0.73
    assert kth_pairwise_difference(control, candidate, 12_000) == 0.9


def test_hodges_lehmann_is_the_median_of_all_pairwise_differences() -> None:
    rng = np.random.default_rng(23)
    control, candidate = rng.exponential(1.0, 201), rng.exponential(1.5, 150)
    expected = np.median(np.subtract.outer(candidate, control))
    assert hodges_lehmann(control, candidate) == pytest.approx(expected, rel=1e-12)


def test_shift_interval_is_the_order_statistic_interval_of_the_differences() -> None:
    rng = np.random.default_rng(24)
    control, candidate = rng.normal(0, 1, 30), rng.normal(0.5, 1, 25)
    m, n = 25, 30
    c = math.floor(m * n / 2 - 0.5 - stats.norm.ppf(0.975) * math.sqrt(m * n * (m + n + 1) / 12))
    every = np.sort(np.subtract.outer(candidate, control).ravel())
    result = mann_whitney(control, candidate)
    assert (result.lower, result.upper) == (every[c], every[m * n - c - 1])
    assert result.lower <= result.shift <= result.upper


def test_shift_interval_covers_the_true_shift_at_its_nominal_rate() -> None:
    rng = np.random.default_rng(25)
    reps, hits = 400, 0
    for _ in range(reps):
        control = rng.standard_t(3, 40)
        candidate = rng.standard_t(3, 40) + 1.0
        result = mann_whitney(control, candidate, alpha=0.05)
        hits += result.lower <= 1.0 <= result.upper
    # Binomial standard error of a 95% coverage estimated from 400 replications ~ 0.011.
    se = math.sqrt(0.95 * 0.05 / reps)
    assert abs(hits / reps - 0.95) <= 3 * se


def test_shift_interval_is_infinite_when_samples_are_too_small_for_the_level() -> None:
    result = mann_whitney([1.0, 2.0], [3.0, 4.0], alpha=0.05)
    assert (result.lower, result.upper) == (-math.inf, math.inf)


def test_one_sided_shift_interval_is_open_on_the_untested_side() -> None:
    rng = np.random.default_rng(26)
    control, candidate = rng.normal(0, 1, 50), rng.normal(0, 1, 50)
    assert mann_whitney(control, candidate, side="greater").upper == math.inf
    assert mann_whitney(control, candidate, side="less").lower == -math.inf


def test_mann_whitney_rejects_nan_and_empty_samples() -> None:
    with pytest.raises(ValueError, match="finite"):
        mann_whitney([1.0, math.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least one"):
        mann_whitney([], [1.0])
