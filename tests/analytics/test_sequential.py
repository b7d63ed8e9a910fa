"""Confidence sequences: the published formula, p/interval duality, and validity under
continuous monitoring (A/A streams looked at after every batch)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analytics.batch import MomentsArray, compare_batch
from analytics.sequential import (
    RunningInterval,
    confidence_sequence,
    mixture_rho2,
    msprt_two_proportions,
    multiplier,
    running_update,
)

ALPHA = 0.05


def binomial_se(rate: float, reps: int) -> float:
    """Standard error of a rate estimated from ``reps`` independent replications."""
    return math.sqrt(rate * (1 - rate) / reps)


def test_two_sided_half_width_is_the_waudby_smith_formula_in_gbstats_form() -> None:
    alpha, n_star = 0.05, 2_000.0
    rho2 = (-2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))) / n_star
    assert mixture_rho2(alpha, n_star) == pytest.approx(rho2, rel=1e-15)
    for n, se in ((10, 0.3), (500, 0.02), (2_000, 0.01), (50_000, 0.001)):
        s = se * math.sqrt(n)  # per-observation standard deviation of the difference
        half = s * math.sqrt(
            2 * (n * rho2 + 1) / (n * n * rho2) * math.log(math.sqrt(n * rho2 + 1) / alpha)
        )
        cs = confidence_sequence(0.1, se, n, alpha=alpha, n_star=n_star)
        assert cs.upper - 0.1 == pytest.approx(half, rel=1e-12)
        assert 0.1 - cs.lower == pytest.approx(half, rel=1e-12)


def test_one_sided_bound_is_the_gbstats_one_sided_formula_tuned_at_twice_alpha() -> None:
    alpha, n_star, n, se = 0.05, 1_000.0, 700.0, 0.03
    a = 2 * alpha
    rho2 = (-2 * math.log(a) + math.log(1 - 2 * math.log(a))) / n_star
    half = se * math.sqrt(n) * math.sqrt(
        2 * (n * rho2 + 1) / (n * n * rho2) * math.log(1 + math.sqrt(n * rho2 + 1) / (2 * alpha))
    )
    greater = confidence_sequence(0.0, se, n, alpha=alpha, n_star=n_star, side="greater")
    less = confidence_sequence(0.0, se, n, alpha=alpha, n_star=n_star, side="less")
    assert (greater.lower, greater.upper) == (pytest.approx(-half, rel=1e-12), math.inf)
    assert (less.lower, less.upper) == (-math.inf, pytest.approx(half, rel=1e-12))


def test_two_sided_p_value_is_the_inverse_of_the_gaussian_mixture_martingale() -> None:
    rho2, n, se, estimate, null = mixture_rho2(ALPHA, 1_000), 800.0, 0.02, 0.03, -0.01
    s2 = se * se * n
    martingale = math.exp(
        rho2 * n * n * (estimate - null) ** 2 / (2 * s2 * (n * rho2 + 1))
    ) / math.sqrt(n * rho2 + 1)
    cs = confidence_sequence(estimate, se, n, n_star=1_000, null=null)
    assert cs.p_value == pytest.approx(min(1.0, 1.0 / martingale), rel=1e-12)


@pytest.mark.parametrize("side", ["two-sided", "greater", "less"])
def test_p_value_is_at_most_alpha_exactly_when_the_null_is_outside_the_sequence(side: str) -> None:
    rng = np.random.default_rng(61)
    estimate = rng.normal(0, 0.05, 20_000)
    se = rng.uniform(0.005, 0.05, 20_000)
    n = rng.uniform(20, 20_000, 20_000)
    null = rng.normal(0, 0.05, 20_000)
    cs = confidence_sequence(estimate, se, n, alpha=0.1, n_star=3_000, side=side, null=null)
    outside = (null < cs.lower) | (null > cs.upper)
    # Exact equality can differ only within float rounding of the boundary itself.
    near = np.abs(cs.p_value - 0.1) < 1e-10
    assert np.array_equal((cs.p_value <= 0.1)[~near], outside[~near])
    assert outside.sum() > 1_000 and (~outside).sum() > 1_000  # both cases exercised


@pytest.mark.parametrize("side", ["two-sided", "greater"])
def test_sequence_is_tightest_relative_to_its_standard_error_near_n_star(side: str) -> None:
    grid = np.linspace(50, 20_000, 40_000)
    widths = multiplier(grid, alpha=ALPHA, n_star=2_000, side=side)
    assert 0.8 * 2_000 <= grid[np.argmin(widths)] <= 1.25 * 2_000
    at_n_star = multiplier(2_000.0, alpha=ALPHA, n_star=2_000, side=side)
    assert at_n_star <= widths.min() * 1.001


def test_no_information_gives_an_infinite_interval_and_p_value_one() -> None:
    for se, n in ((0.0, 100), (0.1, 0)):
        cs = confidence_sequence(0.5, se, n)
        assert (cs.lower, cs.upper, cs.p_value) == (-math.inf, math.inf, 1.0)


@pytest.mark.parametrize(
    "bad",
    [{"estimate": math.nan}, {"se": math.inf}, {"alpha": 0.0}, {"alpha": 1.0},
     {"n_star": 0.0}, {"n_star": -5.0}, {"side": "sideways"}],
)
def test_confidence_sequence_rejects_bad_input(bad: dict[str, object]) -> None:
    arguments: dict[str, object] = {"estimate": 0.1, "se": 0.1, "n": 100} | bad
    with pytest.raises(ValueError):
        confidence_sequence(**arguments)  # type: ignore[arg-type]


def _monitor_proportions(
    p_control: float, p_candidate: float, *, reps: int, batch: int, looks: int, seed: int,
    side: str = "two-sided",
) -> tuple[np.ndarray, np.ndarray]:
    """Return per replication whether the sequence, and a z-test re-run at every look, ever
    rejected at ALPHA."""
    rng = np.random.default_rng(seed)
    x_c = np.cumsum(rng.binomial(batch, p_control, (looks, reps)), axis=0).astype(float)
    x_t = np.cumsum(rng.binomial(batch, p_candidate, (looks, reps)), axis=0).astype(float)
    sequential = np.zeros(reps, dtype=bool)
    naive = np.zeros(reps, dtype=bool)
    for look in range(looks):
        n = np.full(reps, batch * (look + 1.0))
        result = compare_batch(
            MomentsArray.from_proportions(x_c[look], n),
            MomentsArray.from_proportions(x_t[look], n),
            kind="proportion", alpha=ALPHA, side=side, n_star=2_000,  # type: ignore[arg-type]
        )
        sequential |= result.p_value <= ALPHA
        pooled = (x_c[look] + x_t[look]) / (2 * n)
        se = np.sqrt(pooled * (1 - pooled) * 2 / n)
        z = np.divide(x_t[look] - x_c[look], n * se, out=np.zeros(reps), where=se > 0)
        naive |= np.abs(z) >= 1.959963984540054
    return sequential, naive


@pytest.mark.parametrize("side", ["two-sided", "less"])
def test_aa_proportions_monitored_after_every_batch_keep_false_positives_at_alpha(
    side: str,
) -> None:
    reps = 2_000
    sequential, naive = _monitor_proportions(
        0.8, 0.8, reps=reps, batch=20, looks=150, seed=62, side=side
    )
    assert sequential.mean() <= ALPHA + 3 * binomial_se(ALPHA, reps)
    # The reason for all this: peeking at a fixed-horizon test 150 times inflates its error.
    assert naive.mean() >= 3 * ALPHA


def test_aa_log_normal_latencies_monitored_after_every_batch_keep_false_positives() -> None:
    rng = np.random.default_rng(63)
    reps, batch, looks = 2_000, 20, 100
    log_c = np.log(rng.lognormal(6.0, 0.8, (looks, batch, reps)))
    log_t = np.log(rng.lognormal(6.0, 0.8, (looks, batch, reps)))
    arms = []
    for logs in (log_c, log_t):
        arms.append((np.cumsum(logs.sum(axis=1), axis=0), np.cumsum((logs**2).sum(axis=1), axis=0)))
    rejected = np.zeros(reps, dtype=bool)
    for look in range(looks):
        n = np.full(reps, batch * (look + 1.0))
        result = compare_batch(
            # m2: squared deviations from the mean, from the running sums.
            MomentsArray(n, arms[0][0][look], arms[0][1][look] - arms[0][0][look] ** 2 / n),
            MomentsArray(n, arms[1][0][look], arms[1][1][look] - arms[1][0][look] ** 2 / n),
            kind="log_mean", alpha=ALPHA, n_star=2_000,
        )
        rejected |= result.p_value <= ALPHA
    assert rejected.mean() <= ALPHA + 3 * binomial_se(ALPHA, reps)


def test_sequence_detects_a_real_regression_long_before_an_unbounded_horizon() -> None:
    sequential, _ = _monitor_proportions(0.8, 0.7, reps=500, batch=20, looks=50, seed=64,
                                         side="less")
    # By 1,000 per arm (3x the fixed-horizon n for this effect) nearly every run has stopped.
    assert sequential.mean() >= 0.95


def test_running_interval_keeps_the_intersection_and_the_smallest_p_value() -> None:
    running = RunningInterval()
    running = running.update(-0.10, 0.05, 0.30)
    running = running.update(-0.02, 0.20, 0.04)
    running = running.update(-0.08, 0.01, 0.50)  # a later, less favourable look
    assert (running.lower, running.upper, running.p_value, running.looks) == (
        -0.02, 0.01, 0.04, 3
    )
    assert not running.is_empty


def test_running_interval_rejects_nan_bounds_and_p_values_outside_zero_one() -> None:
    with pytest.raises(ValueError):
        RunningInterval().update(math.nan, 1.0, 0.5)
    with pytest.raises(ValueError):
        RunningInterval().update(0.0, 1.0, 1.5)


def test_running_update_over_arrays_matches_running_interval_per_element() -> None:
    rng = np.random.default_rng(65)
    lows, highs, ps = rng.normal(-1, 0.5, (3, 10)), rng.normal(1, 0.5, (3, 10)), rng.random((3, 10))
    state = (np.full(10, -np.inf), np.full(10, np.inf), np.ones(10))
    for look in range(3):
        state = running_update(*state, lows[look], highs[look], ps[look])
    for i in range(10):
        single = RunningInterval()
        for look in range(3):
            single = single.update(lows[look, i], highs[look, i], ps[look, i])
        assert (single.lower, single.upper, single.p_value) == tuple(part[i] for part in state)


def test_msprt_equals_the_sequence_mixture_when_tau2_matches_rho2_times_variance() -> None:
    x_c, n_c, x_t, n_t = 780, 1_000, 745, 1_050
    p_c, p_t = x_c / n_c, x_t / n_t
    v = p_c * (1 - p_c) / n_c + p_t * (1 - p_t) / n_t
    rho2 = mixture_rho2(ALPHA, 1_500)
    result = msprt_two_proportions(x_c, n_c, x_t, n_t, tau2=rho2 * (n_c + n_t) * v)
    cs = confidence_sequence(p_t - p_c, math.sqrt(v), n_c + n_t, n_star=1_500)
    assert result.p_value == pytest.approx(cs.p_value, rel=1e-9)
    assert result.reject == (cs.p_value <= ALPHA)


def test_msprt_with_a_fixed_mixture_keeps_false_positives_at_alpha_and_detects_effects() -> None:
    rng = np.random.default_rng(66)
    reps, batch, looks = 400, 25, 60
    tau2 = 0.05**2  # expecting effects of about five points
    for p_t, expect_rejections in ((0.8, False), (0.7, True)):
        x_c = np.cumsum(rng.binomial(batch, 0.8, (looks, reps)), axis=0)
        x_t = np.cumsum(rng.binomial(batch, p_t, (looks, reps)), axis=0)
        rejected = np.zeros(reps, dtype=bool)
        for look in range(looks):
            n = batch * (look + 1)
            for r in np.nonzero(~rejected)[0]:
                rejected[r] = msprt_two_proportions(
                    int(x_c[look, r]), n, int(x_t[look, r]), n, tau2=tau2
                ).reject
        if expect_rejections:
            assert rejected.mean() >= 0.95
        else:
            assert rejected.mean() <= ALPHA + 3 * binomial_se(ALPHA, reps)


def test_msprt_without_evidence_has_ratio_one() -> None:
    assert msprt_two_proportions(0, 0, 5, 10, tau2=0.01).p_value == 1.0
    assert msprt_two_proportions(10, 10, 20, 20, tau2=0.01).likelihood_ratio == 1.0


@pytest.mark.parametrize("side", ["two-sided", "greater", "less"])
def test_scalar_and_array_inputs_give_the_same_sequence(side: str) -> None:
    rng = np.random.default_rng(67)
    est, se = rng.normal(0, 0.05, 200), rng.uniform(0.0, 0.05, 200)
    n, null = rng.uniform(0, 5_000, 200), rng.normal(0, 0.02, 200)
    se[:10] = 0.0  # the no-information branch too
    arrays = confidence_sequence(est, se, n, n_star=900, side=side, null=null)
    for i in range(200):
        one = confidence_sequence(float(est[i]), float(se[i]), float(n[i]), n_star=900,
                                  side=side, null=float(null[i]))
        assert one.lower == pytest.approx(arrays.lower[i], rel=1e-12)
        assert one.upper == pytest.approx(arrays.upper[i], rel=1e-12)
        assert one.p_value == pytest.approx(arrays.p_value[i], rel=1e-12, abs=1e-300)


def test_a_vanishingly_small_one_sided_signal_gives_p_value_one_not_an_error() -> None:
    assert confidence_sequence(1e-300, 1.0, 100.0, side="greater").p_value == 1.0
