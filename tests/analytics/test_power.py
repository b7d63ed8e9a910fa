"""Power and sample size: the textbook case, statsmodels, and simulation agree."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats import proportion as smp
from statsmodels.stats.power import TTestIndPower

from analytics.batch import MomentsArray, compare_batch
from analytics.fixed import two_proportion_z_test
from analytics.power import (
    power_two_means,
    power_two_proportions,
    sample_size_two_means,
    sample_size_two_proportions,
    sequential_sample_size,
)

# Our sides are about candidate - control; statsmodels' proportion diff is control - candidate.
SM_SIDE_FOR_DIFF = {"two-sided": "two-sided", "greater": "smaller", "less": "larger"}
SM_SIDE_FOR_EFFECT = {"two-sided": "two-sided", "greater": "larger", "less": "smaller"}


def test_textbook_case_ninety_versus_eighty_eight_needs_3841_per_arm() -> None:
    size = sample_size_two_proportions(0.88, 0.90, alpha=0.05, power=0.8)
    assert (size.n_control, size.n_candidate) == (3841, 3841)


@pytest.mark.parametrize("side", ["two-sided", "greater"])
@pytest.mark.parametrize("ratio", [1.0, 0.25, 3.0])
def test_sample_size_two_proportions_matches_statsmodels(side: str, ratio: float) -> None:
    for p_c, p_t in ((0.80, 0.84), (0.10, 0.13), (0.5, 0.6), (0.02, 0.03)):
        ours = sample_size_two_proportions(p_c, p_t, power=0.9, ratio=ratio, side=side)
        ref = smp.samplesize_proportions_2indep_onetail(
            p_c - p_t, p_t, 0.9, ratio=ratio, alpha=0.05,
            alternative="two-sided" if side == "two-sided" else "larger",
        )
        assert ours.exact_control == pytest.approx(ref, rel=1e-6)
        assert ours.n_candidate == math.ceil(ratio * ours.exact_control)


@pytest.mark.parametrize("side", ["two-sided", "greater", "less"])
def test_power_two_proportions_matches_statsmodels(side: str) -> None:
    for p_c, p_t, n_c, n_t in ((0.8, 0.75, 500, 500), (0.3, 0.36, 800, 200), (0.1, 0.05, 300, 900)):
        ours = power_two_proportions(p_c, p_t, n_c, n_t, side=side)
        ref = smp.power_proportions_2indep(
            p_c - p_t, p_t, n_c, ratio=n_t / n_c, alternative=SM_SIDE_FOR_DIFF[side],
            return_results=False,
        )
        assert ours == pytest.approx(ref, rel=1e-6, abs=1e-12)


def test_power_at_the_planned_size_is_the_planned_power() -> None:
    size = sample_size_two_proportions(0.80, 0.75, power=0.8, ratio=2.0, side="less")
    achieved = power_two_proportions(
        0.80, 0.75, size.exact_control, 2.0 * size.exact_control, side="less"
    )
    assert achieved == pytest.approx(0.8, abs=1e-9)


@pytest.mark.parametrize("side", ["two-sided", "greater"])
def test_power_two_means_matches_statsmodels_t_power(side: str) -> None:
    for d, n_c, ratio in ((0.2, 100, 1.0), (0.5, 30, 2.0), (0.1, 2000, 0.5)):
        ours = power_two_means(d * 3.0, 3.0, n_c, ratio * n_c, side=side)
        ref = TTestIndPower().power(
            effect_size=d, nobs1=n_c, alpha=0.05, ratio=ratio, alternative=SM_SIDE_FOR_EFFECT[side]
        )
        assert ours == pytest.approx(ref, rel=1e-6)


@pytest.mark.parametrize("ratio", [1.0, 2.5])
def test_sample_size_two_means_matches_statsmodels_and_is_minimal(ratio: float) -> None:
    size = sample_size_two_means(0.3, 1.5, power=0.85, ratio=ratio)
    ref = TTestIndPower().solve_power(effect_size=0.2, alpha=0.05, power=0.85, ratio=ratio)
    assert size.exact_control == pytest.approx(ref, rel=1e-6)
    enough = power_two_means(0.3, 1.5, size.n_control, ratio * size.n_control)
    short = power_two_means(0.3, 1.5, size.n_control - 1, ratio * (size.n_control - 1))
    assert short < 0.85 <= enough + 1e-12


def test_sample_size_two_means_handles_unequal_standard_deviations_with_welch() -> None:
    size = sample_size_two_means(1.0, 2.0, sd_candidate=4.0, power=0.8)
    assert power_two_means(1.0, 2.0, size.n_control, size.n_candidate, sd_candidate=4.0) >= 0.8
    # Normal approximation: (1.96 + 0.84)^2 (4 + 16) / 1 = 157; t makes it slightly larger.
    assert 157 <= size.n_control <= 160


def test_sample_size_rejects_no_effect_and_bad_arguments() -> None:
    with pytest.raises(ValueError, match="equal"):
        sample_size_two_proportions(0.5, 0.5)
    with pytest.raises(ValueError, match="power"):
        sample_size_two_proportions(0.5, 0.6, power=1.0)
    with pytest.raises(ValueError, match="ratio"):
        sample_size_two_proportions(0.5, 0.6, ratio=0.0)
    with pytest.raises(ValueError, match="cannot detect"):
        sample_size_two_means(-1.0, 1.0, side="greater")
    with pytest.raises(ValueError, match="alpha"):
        sample_size_two_means(1.0, 1.0, alpha=1.5)


def test_simulated_power_of_the_z_test_at_the_planned_size_meets_the_plan() -> None:
    size = sample_size_two_proportions(0.80, 0.75, power=0.8)
    rng = np.random.default_rng(31)
    reps = 3000
    x_c = rng.binomial(size.n_control, 0.80, reps)
    x_t = rng.binomial(size.n_candidate, 0.75, reps)
    rejected = sum(
        two_proportion_z_test(int(a), size.n_control, int(b), size.n_candidate).p_value <= 0.05
        for a, b in zip(x_c, x_t, strict=True)
    )
    se = math.sqrt(0.8 * 0.2 / reps)  # binomial SE of the simulated rejection rate
    assert abs(rejected / reps - 0.8) <= 3 * se


def test_simulated_power_of_the_t_test_at_the_planned_size_meets_the_plan() -> None:
    size = sample_size_two_means(0.25, 1.0, power=0.8)
    rng = np.random.default_rng(32)
    reps = 3000
    control = rng.normal(0.0, 1.0, (reps, size.n_control))
    candidate = rng.normal(0.25, 1.0, (reps, size.n_candidate))
    p = stats.ttest_ind(candidate, control, axis=1).pvalue
    se = math.sqrt(0.8 * 0.2 / reps)
    assert abs(np.mean(p <= 0.05) - 0.8) <= 3 * se


def test_sequential_horizon_gives_the_confidence_sequence_at_least_the_planned_power() -> None:
    p_c, p_t, batch = 0.80, 0.70, 10
    horizon = sequential_sample_size(
        p_t - p_c, math.sqrt(p_c * (1 - p_c)), sd_candidate=math.sqrt(p_t * (1 - p_t)),
        power=0.8, side="less", n_star=1000,
    )
    looks = math.ceil(horizon.n_control / batch)
    rng = np.random.default_rng(33)
    reps = 2000
    x_c = np.cumsum(rng.binomial(batch, p_c, (looks, reps)), axis=0).astype(float)
    x_t = np.cumsum(rng.binomial(batch, p_t, (looks, reps)), axis=0).astype(float)
    detected = np.zeros(reps, dtype=bool)
    for look in range(looks):
        n = np.full(reps, batch * (look + 1.0))
        result = compare_batch(
            MomentsArray.from_proportions(x_c[look], n),
            MomentsArray.from_proportions(x_t[look], n),
            kind="proportion", side="less", n_star=1000,
        )
        detected |= result.p_value <= 0.05
    se = math.sqrt(0.8 * 0.2 / reps)
    assert detected.mean() >= 0.8 - 3 * se


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_power_refuses_a_sample_size_that_is_not_a_number(bad: float) -> None:
    with pytest.raises(ValueError, match="n_control"):
        power_two_proportions(0.8, 0.7, bad, 100)
    with pytest.raises(ValueError, match="n_candidate"):
        power_two_proportions(0.8, 0.7, 100, bad)
    with pytest.raises(ValueError, match="n_control"):
        power_two_means(0.1, 1.0, bad, 100)
