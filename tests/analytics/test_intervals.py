"""Wilson and Newcombe intervals agree with statsmodels and behave at the edges."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats import proportion as smp

from analytics.intervals import newcombe_interval, wilson_interval


def test_wilson_interval_matches_statsmodels_including_zero_and_all_successes() -> None:
    rng = np.random.default_rng(4)
    cases = [(0, 10), (10, 10), (0, 1), (1, 1), (3, 7)]
    cases += [(int(rng.integers(0, n + 1)), n) for n in rng.integers(1, 2000, size=40)]
    for alpha in (0.05, 0.01, 0.2):
        for successes, n in cases:
            low, high = wilson_interval(successes, n, alpha=alpha)
            ref_low, ref_high = smp.proportion_confint(successes, n, alpha=alpha, method="wilson")
            assert low == pytest.approx(ref_low, abs=1e-9)
            assert high == pytest.approx(ref_high, abs=1e-9)


def test_wilson_interval_is_the_whole_unit_interval_without_data() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_interval_rejects_more_successes_than_trials() -> None:
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_newcombe_interval_matches_statsmodels_for_candidate_minus_control() -> None:
    rng = np.random.default_rng(9)
    cases = [(0, 50, 0, 50), (50, 50, 50, 50), (0, 20, 20, 20), (45, 50, 40, 60)]
    for _ in range(40):
        n_c, n_t = int(rng.integers(1, 3000)), int(rng.integers(1, 3000))
        cases.append((int(rng.binomial(n_c, 0.2)), n_c, int(rng.binomial(n_t, 0.25)), n_t))
    for x_c, n_c, x_t, n_t in cases:
        low, high = newcombe_interval(x_c, n_c, x_t, n_t, alpha=0.05)
        ref = smp.confint_proportions_2indep(x_t, n_t, x_c, n_c, method="newcomb", alpha=0.05)
        assert low == pytest.approx(ref[0], abs=1e-9)
        assert high == pytest.approx(ref[1], abs=1e-9)


def test_newcombe_interval_stays_informative_when_one_arm_never_fails() -> None:
    # A guardrail near zero: Wald would give a zero-width interval for the control arm.
    low, high = newcombe_interval(0, 200, 12, 200)
    assert 0.0 < low < 12 / 200 < high < 1.0


def test_one_sided_newcombe_bound_is_the_two_sided_bound_at_twice_alpha() -> None:
    two = newcombe_interval(30, 100, 45, 100, alpha=0.10)
    assert newcombe_interval(30, 100, 45, 100, alpha=0.05, side="greater") == (two[0], math.inf)
    assert newcombe_interval(30, 100, 45, 100, alpha=0.05, side="less") == (-math.inf, two[1])


def test_newcombe_interval_rejects_an_empty_arm() -> None:
    with pytest.raises(ValueError, match="at least one observation"):
        newcombe_interval(0, 0, 3, 10)
