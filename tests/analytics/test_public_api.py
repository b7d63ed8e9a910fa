"""The public surface of ``analytics`` is explicit and every name in it exists."""

from __future__ import annotations

import analytics
import analytics.compare

EXPECTED = {
    "DEFAULT_N_STAR", "SRM_THRESHOLD", "Adjustment", "Better", "ChiSquare", "Comparison",
    "ConfidenceSequence", "Difference", "FixedTest", "MannWhitney", "MetricKind", "Moments",
    "MomentsArray", "Msprt", "RunningInterval", "SampleSize", "SequentialBatch", "Side",
    "SrmBatch", "SrmResult", "benjamini_hochberg", "bonferroni", "chi_square_independence",
    "cohens_d", "cohens_h", "compare_batch", "compare_strata",
    "confidence_sequence", "effect_label", "eliminate_worse_arms", "expected_loss",
    "hodges_lehmann", "holm", "mann_whitney", "mixture_rho2", "msprt_two_proportions",
    "multiplier", "newcombe_interval", "power_two_means", "power_two_proportions",
    "probability_best", "running_update", "sample_size_two_means",
    "sample_size_two_proportions", "sequential_sample_size", "srm_test", "srm_tests",
    "stratified_difference", "two_proportion_z_test", "welch_interval", "welch_t_test",
    "wilson_interval", "AlphaSplit", "DifferenceArray", "Horizon", "compare_strata_batch",
    "newcombe_p_value", "planned_horizon", "split_alpha", "stratified_differences",
}


def test_all_lists_exactly_the_public_names() -> None:
    assert set(analytics.__all__) == EXPECTED
    assert len(analytics.__all__) == len(EXPECTED)  # no duplicates


def test_every_public_name_resolves() -> None:
    for name in analytics.__all__:
        assert getattr(analytics, name) is not None, name


def test_analytics_compare_is_the_module_not_the_function_it_holds() -> None:
    assert analytics.compare.__name__ == "analytics.compare"
    assert callable(analytics.compare.compare)


def test_compare_module_exports_the_names_deploy_codes_against() -> None:
    for name in ("MetricKind", "Better", "Side", "Comparison", "compare", "compare_strata"):
        assert hasattr(analytics.compare, name), name
    fields = set(analytics.compare.Comparison.__dataclass_fields__)
    assert {
        "kind", "method", "estimate", "lower", "upper", "p_value", "effect_size",
        "effect_label", "n_control", "n_candidate", "enough_data", "reading",
    } <= fields
