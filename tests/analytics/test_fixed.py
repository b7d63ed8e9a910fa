"""Fixed-horizon tests agree with scipy and statsmodels wherever the formula is the same."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats import proportion as smp

from analytics.fixed import (
    chi_square_independence,
    two_proportion_z_test,
    welch_interval,
    welch_t_test,
)
from analytics.moments import Moments

SCIPY_SIDE = {"two-sided": "two-sided", "greater": "greater", "less": "less"}
SM_SIDE = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}


@pytest.mark.parametrize("side", ["two-sided", "greater", "less"])
def test_welch_t_matches_scipy_on_random_samples(side: str) -> None:
    rng = np.random.default_rng(11)
    for trial in range(20):
        control = rng.normal(10.0, rng.uniform(0.5, 3.0), size=rng.integers(3, 200))
        candidate = rng.normal(10.3, rng.uniform(0.5, 3.0), size=rng.integers(3, 200))
        ours = welch_t_test(Moments.from_values(control), Moments.from_values(candidate), side=side)
        ref = stats.ttest_ind(candidate, control, equal_var=False, alternative=side)
        assert ours.statistic == pytest.approx(ref.statistic, rel=1e-6, abs=1e-9), trial
        assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-12), trial
        assert ours.df == pytest.approx(ref.df, rel=1e-6), trial
        low, high = ref.confidence_interval(0.95)
        assert ours.lower == pytest.approx(low, rel=1e-6, abs=1e-9) or low == -np.inf
        assert ours.upper == pytest.approx(high, rel=1e-6, abs=1e-9) or high == np.inf


def test_welch_t_tests_a_non_zero_null_as_a_shifted_sample() -> None:
    rng = np.random.default_rng(5)
    control, candidate = rng.normal(0, 1, 50), rng.normal(1, 2, 80)
    ours = welch_t_test(Moments.from_values(control), Moments.from_values(candidate), null=0.4)
    ref = stats.ttest_ind(candidate - 0.4, control, equal_var=False)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-6)


def test_welch_interval_is_the_tests_interval_at_level_alpha() -> None:
    rng = np.random.default_rng(3)
    control, candidate = rng.normal(0, 1, 40), rng.normal(0, 3, 30)
    low, high = welch_interval(
        Moments.from_values(control), Moments.from_values(candidate), alpha=0.1
    )
    ref = stats.ttest_ind(candidate, control, equal_var=False).confidence_interval(0.9)
    assert low == pytest.approx(ref.low, rel=1e-6)
    assert high == pytest.approx(ref.high, rel=1e-6)


def test_welch_t_rejects_arms_with_fewer_than_two_observations() -> None:
    with pytest.raises(ValueError, match="two observations"):
        welch_t_test(Moments.from_values([1.0]), Moments.from_values([1.0, 2.0]))


def test_welch_t_rejects_two_constant_arms_instead_of_returning_nan() -> None:
    with pytest.raises(ValueError, match="zero variance"):
        welch_t_test(Moments.from_values([3.0, 3.0]), Moments.from_values([5.0, 5.0]))


def test_welch_t_rejects_alpha_outside_the_unit_interval() -> None:
    a = Moments.from_values([1.0, 2.0, 3.0])
    for alpha in (0.0, 1.0, -0.1, math.nan):
        with pytest.raises(ValueError, match="alpha"):
            welch_t_test(a, a, alpha=alpha)


@pytest.mark.parametrize("side", ["two-sided", "greater", "less"])
def test_two_proportion_z_matches_statsmodels_pooled_test(side: str) -> None:
    rng = np.random.default_rng(7)
    for _ in range(30):
        n_c, n_t = int(rng.integers(20, 5000)), int(rng.integers(20, 5000))
        x_c, x_t = int(rng.binomial(n_c, 0.3)), int(rng.binomial(n_t, 0.33))
        ours = two_proportion_z_test(x_c, n_c, x_t, n_t, side=side)
        z, p = smp.proportions_ztest([x_t, x_c], [n_t, n_c], alternative=SM_SIDE[side])
        assert ours.statistic == pytest.approx(z, rel=1e-6)
        assert ours.p_value == pytest.approx(p, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("side", ["two-sided", "greater", "less"])
def test_two_proportion_z_with_a_margin_matches_statsmodels_wald_test(side: str) -> None:
    rng = np.random.default_rng(8)
    for _ in range(30):
        n_c, n_t = int(rng.integers(50, 3000)), int(rng.integers(50, 3000))
        x_c, x_t = int(rng.binomial(n_c, 0.8)), int(rng.binomial(n_t, 0.78))
        ours = two_proportion_z_test(x_c, n_c, x_t, n_t, side=side, null=-0.02)
        ref = smp.test_proportions_2indep(
            x_t, n_t, x_c, n_c, value=-0.02, method="wald", compare="diff",
            alternative=SM_SIDE[side], correction=False,
        )
        assert ours.statistic == pytest.approx(ref.statistic, rel=1e-6)
        assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-12)


def test_two_proportion_z_is_one_when_both_arms_are_all_successes() -> None:
    result = two_proportion_z_test(100, 100, 50, 50)
    assert (result.statistic, result.p_value, result.estimate) == (0.0, 1.0, 0.0)


def test_two_proportion_z_rejects_impossible_counts() -> None:
    for args in ((5, 4, 1, 10), (-1, 10, 1, 10), (1, 0, 1, 10)):
        with pytest.raises(ValueError):
            two_proportion_z_test(*args)


@pytest.mark.parametrize("correction", [False, True])
def test_chi_square_independence_matches_scipy(correction: bool) -> None:
    rng = np.random.default_rng(2)
    for shape in ((2, 2), (2, 3), (4, 5)):
        for _ in range(10):
            table = rng.integers(1, 300, size=shape)
            ours = chi_square_independence(table.tolist(), correction=correction)
            ref = stats.chi2_contingency(table, correction=correction)
            assert ours.statistic == pytest.approx(ref.statistic, rel=1e-9)
            assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-300)
            assert ours.dof == ref.dof


def test_chi_square_independence_rejects_an_empty_row_or_negative_count() -> None:
    with pytest.raises(ValueError, match="positive total"):
        chi_square_independence([[0, 0], [3, 4]])
    with pytest.raises(ValueError, match="non-negative"):
        chi_square_independence([[-1, 2], [3, 4]])
