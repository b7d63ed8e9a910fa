"""Choosing among candidates: posterior probability to be best, expected loss, and
sequential elimination."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from analytics.moments import Moments
from analytics.selection import eliminate_worse_arms, expected_loss, probability_best

DRAWS = 40_000


def exact_probability_b_beats_a(a: tuple[int, int], b: tuple[int, int]) -> float:
    """P(rate_b > rate_a) under uniform priors, by numerical integration."""
    pa, pb = stats.beta(1 + a[0], 1 + a[1] - a[0]), stats.beta(1 + b[0], 1 + b[1] - b[0])
    return integrate.quad(lambda x: pb.pdf(x) * pa.cdf(x), 0, 1, limit=200)[0]


def exact_loss_of_a(a: tuple[int, int], b: tuple[int, int]) -> float:
    """E[max(rate_a, rate_b) - rate_a] = E[(rate_b - rate_a)^+], by numerical integration."""
    alpha_a, beta_a = 1 + a[0], 1 + a[1] - a[0]
    pa, pa_shift = stats.beta(alpha_a, beta_a), stats.beta(alpha_a + 1, beta_a)
    pb = stats.beta(1 + b[0], 1 + b[1] - b[0])
    mean_a = alpha_a / (alpha_a + beta_a)
    # E[(y - X)^+] for X ~ Beta(a): y F_a(y) - E[X; X <= y] = y F_a(y) - mean_a F_(a+1)(y).
    inner = lambda y: y * pa.cdf(y) - mean_a * pa_shift.cdf(y)  # noqa: E731
    return integrate.quad(lambda y: pb.pdf(y) * inner(y), 0, 1, limit=200)[0]


def test_probability_best_of_two_arms_matches_the_exact_posterior_probability() -> None:
    for a, b in (((80, 100), (85, 100)), ((400, 1000), (380, 1000)), ((3, 10), (4, 10))):
        p_best = probability_best([a, b], draws=DRAWS, seed=1)
        exact = exact_probability_b_beats_a(a, b)
        se = math.sqrt(exact * (1 - exact) / DRAWS)
        assert abs(p_best[1] - exact) <= 4 * se + 1e-12
        assert sum(p_best) == pytest.approx(1.0)


def test_expected_loss_of_two_arms_matches_numerical_integration() -> None:
    a, b = (80, 100), (85, 100)
    losses = expected_loss([a, b], draws=DRAWS, seed=2)
    for ours, exact in ((losses[0], exact_loss_of_a(a, b)), (losses[1], exact_loss_of_a(b, a))):
        # Loss per draw is bounded by 1 and rarely large; its SD is at most its RMS, so a
        # crude but safe standard error is sqrt(E[loss^2] / draws) <= sqrt(exact / draws).
        assert abs(ours - exact) <= 4 * math.sqrt(exact / DRAWS)


def test_probability_best_is_reproducible_for_a_seed_and_changes_with_it() -> None:
    arms = [(50, 100), (52, 100), (49, 100)]
    assert probability_best(arms, seed=7) == probability_best(arms, seed=7)
    assert probability_best(arms, seed=7) != probability_best(arms, seed=8)


def test_probability_best_favours_low_rates_when_lower_is_better() -> None:
    arms = [(10, 1000), (40, 1000)]  # error counts
    assert probability_best(arms, better="lower")[0] > 0.99
    assert expected_loss(arms, better="lower")[0] < expected_loss(arms, better="lower")[1]


@pytest.mark.parametrize(
    "arms", [[], [(5, 4)], [(-1, 10)]]
)
def test_probability_best_rejects_impossible_arms(arms: list[tuple[int, int]]) -> None:
    with pytest.raises(ValueError):
        probability_best(arms)


def test_probability_best_rejects_a_non_positive_prior() -> None:
    with pytest.raises(ValueError, match="prior"):
        probability_best([(1, 2)], prior=(0.0, 1.0))


def test_a_clearly_worse_arm_is_eliminated_and_the_others_survive() -> None:
    arms = [Moments.from_proportion(s, 1000) for s in (800, 810, 650)]
    assert eliminate_worse_arms(arms, kind="proportion") == [True, True, False]


def test_elimination_is_final_even_if_later_data_favour_the_arm() -> None:
    arms = [Moments.from_proportion(s, 100) for s in (50, 50)]
    assert eliminate_worse_arms(arms, kind="proportion", active=[True, False]) == [True, False]


def test_elimination_of_lower_is_better_metrics_keeps_the_fastest_arm() -> None:
    rng = np.random.default_rng(81)
    arms = [Moments.from_values(rng.normal(mu, 1.0, 400)) for mu in (5.0, 5.5, 5.02)]
    assert eliminate_worse_arms(arms, kind="log_mean", better="lower") == [True, False, True]


def test_equal_arms_monitored_after_every_batch_are_rarely_eliminated() -> None:
    rng = np.random.default_rng(82)
    reps, batch, looks, alpha = 200, 25, 20, 0.05
    any_eliminated = 0
    for _ in range(reps):
        successes = np.cumsum(rng.binomial(batch, 0.7, (looks, 3)), axis=0)
        active = [True, True, True]
        for look in range(looks):
            arms = [Moments.from_proportion(int(s), batch * (look + 1)) for s in successes[look]]
            active = eliminate_worse_arms(arms, kind="proportion", alpha=alpha, active=active)
        any_eliminated += not all(active)
    se = math.sqrt(alpha * (1 - alpha) / reps)
    assert any_eliminated / reps <= alpha + 3 * se


def test_elimination_rejects_a_mismatched_active_list() -> None:
    with pytest.raises(ValueError, match="active"):
        eliminate_worse_arms([Moments.from_proportion(1, 2)] * 2, kind="proportion", active=[True])
