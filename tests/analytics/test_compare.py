"""The one comparison call: same numbers as its building blocks, defined on bad input,
post-stratified across ramp steps, and readable."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from analytics.batch import MomentsArray, compare_batch
from analytics.compare import Comparison, compare, compare_strata
from analytics.effects import cohens_d, cohens_h
from analytics.estimates import stratified_difference
from analytics.fixed import two_proportion_z_test, welch_t_test
from analytics.intervals import newcombe_interval, newcombe_p_value
from analytics.moments import Moments
from analytics.sequential import confidence_sequence


def prop(successes: int, n: int) -> Moments:
    return Moments.from_proportion(successes, n)


def test_fixed_mean_comparison_is_welchs_t_test() -> None:
    rng = np.random.default_rng(71)
    control, candidate = rng.normal(5, 2, 120), rng.normal(5.6, 3, 90)
    result = compare(
        Moments.from_values(control), Moments.from_values(candidate), kind="mean", method="fixed"
    )
    ref = stats.ttest_ind(candidate, control, equal_var=False)
    assert result.method == "welch-t"
    assert result.p_value == pytest.approx(ref.pvalue, rel=1e-6)
    assert (result.lower, result.upper) == pytest.approx(tuple(ref.confidence_interval()), rel=1e-6)
    assert result.estimate == pytest.approx(candidate.mean() - control.mean(), rel=1e-12)
    assert result.effect_size == pytest.approx(
        cohens_d(Moments.from_values(control), Moments.from_values(candidate)), rel=1e-12
    )


def test_fixed_proportion_comparison_inverts_the_newcombe_interval() -> None:
    result = compare(prop(160, 200), prop(140, 200), kind="proportion", method="fixed")
    assert result.method == "newcombe-score"
    assert result.p_value == newcombe_p_value(160, 200, 140, 200)
    assert (result.lower, result.upper) == newcombe_interval(160, 200, 140, 200)
    assert result.effect_size == pytest.approx(cohens_h(0.8, 0.7), rel=1e-12)
    assert result.effect_label == "small"
    # Far from the boundaries the score test and the z-test agree to a few percent.
    z_test = two_proportion_z_test(160, 200, 140, 200).p_value
    assert result.p_value == pytest.approx(z_test, rel=0.15)


def test_no_failures_in_either_arm_is_no_evidence_of_a_difference() -> None:
    for side in ("two-sided", "greater", "less"):
        result = compare(prop(0, 10), prop(0, 10), kind="proportion", method="fixed", side=side)
        assert result.p_value == (1.0 if side == "two-sided" else 0.5)
        assert not result.significant
    # Against a non-inferiority margin the Wald variance is 0 and a z-test says p = 0;
    # ten observations per arm cannot show anything within 5 points.
    margin = compare(prop(0, 10), prop(0, 10), kind="proportion", method="fixed",
                     side="greater", null=-0.05)
    assert margin.p_value > 0.2 and margin.lower < -0.05 and not margin.significant


@settings(max_examples=400, deadline=None)
@given(
    control=st.tuples(st.integers(0, 40), st.integers(1, 40)),
    candidate=st.tuples(st.integers(0, 40), st.integers(1, 40)),
    side=st.sampled_from(["two-sided", "greater", "less"]),
    null=st.sampled_from([0.0, -0.1, 0.05]),
    alpha=st.sampled_from([0.01, 0.05, 0.2]),
)
def test_fixed_proportion_p_value_never_contradicts_its_interval(
    control: tuple[int, int], candidate: tuple[int, int], side: str, null: float, alpha: float
) -> None:
    c, t = prop(min(control), max(control)), prop(min(candidate), max(candidate))
    result = compare(c, t, kind="proportion", method="fixed", side=side, null=null, alpha=alpha)  # type: ignore[arg-type]
    if not result.enough_data:
        return
    excluded = null < result.lower or null > result.upper
    # Equality only within the root finder's tolerance of the boundary itself.
    if abs(result.p_value - alpha) > 1e-9:
        assert result.significant == excluded


def test_sequential_comparison_is_the_confidence_sequence_of_the_difference() -> None:
    control, candidate = prop(800, 1000), prop(740, 1000)
    result = compare(control, candidate, kind="proportion", side="less", null=-0.02, n_star=1500)
    se = math.sqrt(0.8 * 0.2 / 1000 + 0.74 * 0.26 / 1000)
    cs = confidence_sequence(-0.06, se, 2000, n_star=1500, side="less", null=-0.02)
    assert result.method == "confidence-sequence"
    assert (result.lower, result.upper) == (-math.inf, pytest.approx(cs.upper, rel=1e-12))
    assert result.p_value == pytest.approx(cs.p_value, rel=1e-12)


def test_a_single_stratum_is_exactly_compare() -> None:
    rng = np.random.default_rng(72)
    a, b = Moments.from_values(rng.normal(0, 1, 50)), Moments.from_values(rng.normal(1, 1, 40))
    for method in ("sequential", "fixed"):
        assert compare_strata([(a, b)], kind="mean", method=method) == compare(
            a, b, kind="mean", method=method
        )


def test_post_stratification_removes_the_bias_of_pooling_across_ramp_steps() -> None:
    # The candidate equals control within each step, but its traffic arrives mostly in the
    # second step, when the success rate has drifted down for everybody.
    step1 = (prop(1_710, 1_900), prop(90, 100))  # 5% canary, rate 0.90
    step2 = (prop(700, 1_000), prop(700, 1_000))  # 50% canary, rate 0.70
    pooled = compare(step1[0] + step2[0], step1[1] + step2[1], kind="proportion")
    stratified = compare_strata([step1, step2], kind="proportion")
    assert pooled.significant and pooled.estimate < -0.1  # naive pooling: a phantom harm
    assert stratified.estimate == pytest.approx(0.0, abs=1e-12)
    assert not stratified.significant


def test_post_stratified_estimate_is_unbiased_under_drift_and_changing_weights() -> None:
    rng = np.random.default_rng(73)
    steps = ((0.90, 2_000, 0.05), (0.80, 2_000, 0.25), (0.70, 2_000, 0.5))  # rate, n, weight
    true_effect, reps, estimates, ses = -0.03, 400, [], []
    for _ in range(reps):
        strata = []
        for rate, n, weight in steps:
            n_t = int(n * weight)
            strata.append((
                prop(int(rng.binomial(n - n_t, rate)), n - n_t),
                prop(int(rng.binomial(n_t, rate + true_effect)), n_t),
            ))
        diff = compare_strata(strata, kind="proportion", method="fixed")
        estimates.append(diff.estimate)
        ses.append((diff.upper - diff.lower) / (2 * 1.959963984540054))
    # The mean of 400 estimates has standard error ~ typical se / sqrt(400).
    assert abs(np.mean(estimates) - true_effect) <= 3 * np.mean(ses) / math.sqrt(reps)


def test_compare_batch_matches_compare_element_by_element() -> None:
    rng = np.random.default_rng(74)
    cases = [(0, 0, 5, 10), (1, 1, 0, 1), (30, 30, 0, 30), (0, 40, 0, 40), (50, 50, 50, 50)]
    for _ in range(60):
        n_c, n_t = int(rng.integers(1, 3000)), int(rng.integers(1, 3000))
        cases.append((int(rng.binomial(n_c, 0.7)), n_c, int(rng.binomial(n_t, 0.68)), n_t))
    control = [prop(x, n) for x, n, _, _ in cases]
    candidate = [prop(x, n) for _, _, x, n in cases]
    for side in ("two-sided", "greater", "less"):
        batch = compare_batch(
            MomentsArray.from_moments(control), MomentsArray.from_moments(candidate),
            kind="proportion", side=side, null=-0.01, n_star=800,
        )
        for i, (c, t) in enumerate(zip(control, candidate, strict=True)):
            one = compare(c, t, kind="proportion", side=side, null=-0.01, n_star=800)
            assert batch.enough_data[i] == one.enough_data
            assert batch.estimate[i] == pytest.approx(one.estimate, abs=1e-15)
            assert batch.p_value[i] == pytest.approx(one.p_value, rel=1e-12)
            assert batch.lower[i] == pytest.approx(one.lower, rel=1e-12)
            assert batch.upper[i] == pytest.approx(one.upper, rel=1e-12)


def test_compare_batch_matches_compare_for_log_means() -> None:
    rng = np.random.default_rng(75)
    control = [Moments.from_values(rng.normal(6, 1, rng.integers(0, 50))) for _ in range(30)]
    candidate = [Moments.from_values(rng.normal(6.2, 1, rng.integers(0, 50))) for _ in range(30)]
    batch = compare_batch(
        MomentsArray.from_moments(control), MomentsArray.from_moments(candidate), kind="log_mean"
    )
    for i, (c, t) in enumerate(zip(control, candidate, strict=True)):
        one = compare(c, t, kind="log_mean")
        assert batch.enough_data[i] == one.enough_data
        assert batch.p_value[i] == pytest.approx(one.p_value, rel=1e-9)


@pytest.mark.parametrize(
    ("control", "candidate", "kind"),
    [(prop(0, 0), prop(5, 10), "proportion"),
     (Moments.from_values([1.0]), Moments.from_values([1.0, 2.0, 3.0]), "mean"),
     (Moments(), Moments(), "log_mean"),
     (Moments.from_values([2.0, 2.0]), Moments.from_values([3.0, 3.0, 3.0]), "mean")],
)
@pytest.mark.parametrize("method", ["sequential", "fixed"])
def test_not_enough_data_gives_an_infinite_interval_and_p_value_one(
    control: Moments, candidate: Moments, kind: str, method: str
) -> None:
    result = compare(control, candidate, kind=kind, method=method)  # type: ignore[arg-type]
    assert not result.enough_data and not result.significant
    assert (result.lower, result.upper, result.p_value) == (-math.inf, math.inf, 1.0)
    assert (result.effect_size, result.effect_label) == (0.0, "n/a")
    assert not math.isnan(result.estimate)
    assert result.reading.startswith("Not enough data")


def test_a_candidate_that_always_fails_is_caught_although_neither_arm_varies() -> None:
    result = compare(prop(60, 60), prop(0, 60), kind="proportion", side="less")
    assert result.enough_data and result.significant and result.estimate == -1.0


def test_both_arms_all_successes_is_no_evidence_either_way() -> None:
    result = compare(prop(200, 200), prop(200, 200), kind="proportion")
    assert result.enough_data and result.p_value == 1.0 and result.estimate == 0.0


def test_bad_input_raises_a_clear_value_error() -> None:
    good = prop(5, 10)
    with pytest.raises(ValueError, match="alpha"):
        compare(good, good, kind="proportion", alpha=1.0)
    with pytest.raises(ValueError, match="kind"):
        compare(good, good, kind="ratio")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_star"):
        compare(good, good, kind="proportion", n_star=0)
    with pytest.raises(ValueError, match="0/1 data"):
        compare(Moments.from_values([0.5, 2.0]), good, kind="proportion")
    with pytest.raises(ValueError, match="finite"):
        compare(good, good, kind="proportion", null=math.nan)
    with pytest.raises(ValueError, match="finite"):
        Moments.from_values([1.0, math.nan])
    with pytest.raises(ValueError, match="n must be >= 0"):
        Moments(-1, 0.0, 0.0)


def test_reading_names_harm_beyond_the_tolerance_in_points() -> None:
    result = compare(prop(8_000, 10_000), prop(7_400, 10_000), kind="proportion", side="less",
                     null=-0.02)
    assert result.significant
    assert result.reading.startswith("Candidate is worse than control by more than 2.0 pts")


def test_reading_names_non_inferiority() -> None:
    result = compare(prop(8_000, 10_000), prop(8_010, 10_000), kind="proportion",
                     side="greater", null=-0.02)
    assert result.reading.startswith("Candidate is non-inferior")


def test_reading_respects_which_direction_is_better() -> None:
    errors_up = compare(prop(20, 2_000), prop(80, 2_000), kind="proportion", better="lower")
    assert errors_up.reading.startswith("Candidate is worse than control")
    rng = np.random.default_rng(76)
    fast = Moments.from_values(np.log(rng.lognormal(5.0, 0.5, 3_000)))
    slow = Moments.from_values(np.log(rng.lognormal(5.3, 0.5, 3_000)))
    latency = compare(fast, slow, kind="log_mean", better="lower")
    assert latency.reading.startswith("Candidate is worse than control: geometric mean")
    # Log-scale differences read as percentages: e^estimate - 1.
    assert f"({math.expm1(latency.estimate) * 100:+.1f}%;" in latency.reading


def test_reading_of_an_inconclusive_sequential_look_says_so() -> None:
    result = compare(prop(80, 100), prop(78, 100), kind="proportion")
    assert result.reading.startswith("No conclusive difference yet")


arm = st.tuples(st.integers(0, 500), st.integers(0, 500)).map(
    lambda t: prop(min(t), max(t))
)


@settings(max_examples=300, deadline=None)
@given(
    control=arm, candidate=arm,
    side=st.sampled_from(["two-sided", "greater", "less"]),
    method=st.sampled_from(["sequential", "fixed"]),
    null=st.sampled_from([0.0, -0.05, 0.05]),
)
def test_no_field_of_a_proportion_comparison_is_ever_nan(
    control: Moments, candidate: Moments, side: str, method: str, null: float
) -> None:
    result: Comparison = compare(
        control, candidate, kind="proportion", side=side, method=method, null=null,  # type: ignore[arg-type]
    )
    for value in (result.estimate, result.lower, result.upper, result.p_value, result.effect_size):
        assert not math.isnan(value)
    assert 0.0 <= result.p_value <= 1.0
    assert result.lower <= result.estimate <= result.upper or not result.enough_data


def test_welch_p_value_drives_the_fixed_mean_verdict() -> None:
    a = Moments.from_values([1.0, 2.0, 3.0, 4.0])
    b = Moments.from_values([5.0, 6.0, 7.0, 8.0])
    result = compare(a, b, kind="mean", method="fixed")
    assert result.p_value == welch_t_test(a, b).p_value
    assert result.significant and result.reading.startswith("Candidate is better")


def test_strata_are_weighted_by_precision_not_by_share_of_traffic() -> None:
    # A 2.5% first step (250 candidate executions) and a 50% step (5,000 each): by traffic
    # the first step would weigh 10,000 / 20,000 = 50%; its difference is ~6x noisier.
    step0 = (prop(7_800, 9_750), prop(190, 250))
    step1 = (prop(4_000, 5_000), prop(4_050, 5_000))
    diff = stratified_difference([step0, step1], "proportion")
    assert diff is not None
    w0, w1 = 9_750 * 250 / 10_000, 5_000 * 5_000 / 10_000  # Cochran-Mantel-Haenszel
    d0, d1 = 190 / 250 - 0.8, 4_050 / 5_000 - 0.8
    assert diff.estimate == pytest.approx((w0 * d0 + w1 * d1) / (w0 + w1), rel=1e-12)
    assert diff.effective_n == pytest.approx(4 * (w0 + w1), rel=1e-12)
    # The precision weights give a smaller standard error than traffic shares would.
    v0 = 0.8 * 0.2 / 9_750 + 0.76 * 0.24 / 250
    v1 = 0.8 * 0.2 / 5_000 + 0.81 * 0.19 / 5_000
    assert diff.se < 0.8 * math.sqrt(0.5**2 * v0 + 0.5**2 * v1)


def test_an_even_split_has_an_effective_size_equal_to_its_total() -> None:
    diff = stratified_difference([(prop(400, 500), prop(390, 500))], "proportion")
    assert diff is not None and diff.effective_n == pytest.approx(1_000.0, rel=1e-15)
