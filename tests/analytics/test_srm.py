"""Sample-ratio mismatch: agreement with scipy, and the verdicts a rollout acts on."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from analytics.srm import srm_test, srm_tests


def test_srm_statistic_and_p_value_match_scipy_chisquare() -> None:
    rng = np.random.default_rng(51)
    for _ in range(30):
        arms = int(rng.integers(2, 5))
        weights = rng.uniform(0.05, 1.0, arms)
        observed = rng.multinomial(int(rng.integers(100, 100_000)), weights / weights.sum())
        ours = srm_test(observed.tolist(), weights.tolist())
        expected = observed.sum() * weights / weights.sum()
        ref = stats.chisquare(observed, expected)
        assert ours.statistic == pytest.approx(ref.statistic, rel=1e-9, abs=1e-12)
        assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-300)


def test_srm_flags_a_canary_that_gets_far_less_than_its_weight() -> None:
    result = srm_test([9_700, 300], [0.95, 0.05])  # expected 9,500 / 500
    assert result.mismatch and result.enough_data and result.p_value < 1e-10


def test_srm_does_not_flag_counts_that_match_their_weights() -> None:
    result = srm_test([9_510, 490], [0.95, 0.05])
    assert not result.mismatch and result.enough_data


def test_srm_false_alarm_rate_is_at_most_the_threshold() -> None:
    rng = np.random.default_rng(52)
    reps = 20_000
    observed = rng.multinomial(5_000, [0.75, 0.25], reps)
    flagged = srm_tests(observed, np.tile([0.75, 0.25], (reps, 1)), threshold=0.01).mismatch
    se = math.sqrt(0.01 * 0.99 / reps)
    assert flagged.mean() <= 0.01 + 3 * se


def test_srm_waits_for_the_minimum_expected_count_per_arm() -> None:
    result = srm_test([90, 0], [0.5, 0.5], min_count=100)  # expected 45 each
    assert not result.enough_data and not result.mismatch


def test_srm_catches_an_arm_that_receives_nothing_once_it_should_have_enough() -> None:
    result = srm_test([1_000, 0], [0.8, 0.2], min_count=100)  # expected 800 / 200
    assert result.enough_data and result.mismatch


def test_srm_treats_traffic_in_a_zero_weight_arm_as_a_mismatch() -> None:
    result = srm_test([500, 500, 3], [0.5, 0.5, 0.0])
    assert result.mismatch and result.statistic == math.inf and result.p_value == 0.0


def test_srm_ignores_an_empty_zero_weight_arm() -> None:
    assert srm_test([500, 500, 0], [0.5, 0.5, 0.0]) == srm_test([500, 500], [0.5, 0.5])


def test_srm_batch_rows_equal_the_single_test() -> None:
    rng = np.random.default_rng(53)
    observed = rng.integers(0, 2_000, (40, 3))
    weights = rng.uniform(0, 1, (40, 3))
    batch = srm_tests(observed, weights)
    for row in range(40):
        single = srm_test(observed[row].tolist(), weights[row].tolist())
        assert single.statistic == pytest.approx(batch.statistic[row], rel=1e-12)
        assert single.p_value == batch.p_value[row]
        assert single.mismatch == batch.mismatch[row]


@pytest.mark.parametrize(
    ("observed", "weights"),
    [([-1, 5], [0.5, 0.5]), ([5, 5], [0.0, 0.0]), ([5, 5], [0.5, -0.5]), ([5], [1.0]),
     ([5, 5], [0.5, math.nan]), ([5, 5, 5], [0.5, 0.5])],
)
def test_srm_rejects_malformed_input(observed: list[int], weights: list[float]) -> None:
    with pytest.raises(ValueError):
        srm_test(observed, weights)
