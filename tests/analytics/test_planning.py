"""The canary's error budget and planned horizon: the split adds up, the plan delivers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom

from analytics.batch import MomentsArray, compare_batch
from analytics.hypotheses import normal_quantile
from analytics.planning import planned_horizon, split_alpha
from analytics.sequential import multiplier


def test_one_candidate_with_disjoint_nulls_spends_the_whole_alpha_on_each_question() -> None:
    split = split_alpha(0.05, candidates=1, nulls_overlap=False)
    assert (split.harm, split.promotion, split.selection) == (0.05, 0.05, 0.0)


def test_overlapping_harm_and_promotion_nulls_share_alpha() -> None:
    split = split_alpha(0.05, candidates=1, nulls_overlap=True)
    assert split.harm + split.promotion == pytest.approx(0.05, rel=1e-15)


@pytest.mark.parametrize("k", [2, 3])
def test_several_candidates_split_alpha_over_arms_and_ordered_pairs(k: int) -> None:
    split = split_alpha(0.05, candidates=k, nulls_overlap=False)
    # Keeping good prompts: k harm families plus k (k - 1) ordered pairs spend alpha.
    assert k * split.harm + k * (k - 1) * split.selection == pytest.approx(0.05, rel=1e-12)
    # Shipping only good prompts: k promotion bounds spend alpha.
    assert k * split.promotion == pytest.approx(0.05, rel=1e-12)


def test_split_refuses_a_canary_without_candidates() -> None:
    with pytest.raises(ValueError, match="at least one candidate"):
        split_alpha(0.05, candidates=0, nulls_overlap=False)


def test_horizon_is_tuned_at_itself_and_reaches_the_power_there() -> None:
    margin, sd, alpha, power = 0.01, 0.5, 0.05, 0.9
    horizon = planned_horizon(margin, sd, alpha=alpha, power=power)
    n = horizon.samples_per_arm
    assert horizon.n_star == 2 * n
    z = normal_quantile(power)

    def clearance(size: float) -> float:
        se = math.sqrt(2 * sd * sd / size)
        return margin / se - multiplier(2 * size, alpha=alpha, n_star=horizon.n_star,
                                        side="greater")

    assert clearance(n) >= z - 1e-3 and clearance(n - 200) < z


def test_horizon_refuses_a_zero_margin() -> None:
    with pytest.raises(ValueError, match="positive margin"):
        planned_horizon(0.0, 0.5, alpha=0.05, power=0.9)


def _monitor(delta: float, horizon: int, n_star: float, *, seed: int, reps: int = 1_000,
             batch: int = 100, margin: float = 0.05) -> np.ndarray:
    """Return per run whether the promotion bound cleared -margin by the horizon."""
    rng = np.random.default_rng(seed)
    looks = math.ceil(horizon / batch)
    x_c = np.cumsum(rng.binomial(batch, 0.5, (looks, reps)), axis=0).astype(float)
    x_t = np.cumsum(rng.binomial(batch, 0.5 + delta, (looks, reps)), axis=0).astype(float)
    cleared = np.zeros(reps, dtype=bool)
    for look in range(looks):
        n = np.full(reps, batch * (look + 1.0))
        result = compare_batch(
            MomentsArray.from_proportions(x_c[look], n),
            MomentsArray.from_proportions(x_t[look], n),
            kind="proportion", side="greater", null=-margin, n_star=n_star,
        )
        cleared |= result.p_value <= 0.05
    return cleared


def test_an_equal_candidate_clears_the_margin_by_the_horizon_with_the_planned_power() -> None:
    horizon = planned_horizon(0.05, 0.5, alpha=0.05, power=0.9)
    cleared = _monitor(0.0, horizon.samples_per_arm, horizon.n_star, seed=92)
    assert cleared.sum() >= binom.ppf(0.001, cleared.size, 0.9)


def test_a_candidate_worse_by_the_margin_is_cleared_in_at_most_alpha_of_runs() -> None:
    horizon = planned_horizon(0.05, 0.5, alpha=0.05, power=0.9)
    cleared = _monitor(-0.05, horizon.samples_per_arm, horizon.n_star, seed=93)
    assert cleared.sum() <= binom.ppf(0.999, cleared.size, 0.05)
