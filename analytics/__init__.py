"""Pure statistics and failure mining for promptd: no I/O, no clock, nothing of ours.

The statistics engine works from streaming ``Moments`` per arm and metric, so a canary
tick never rescans raw events. Start at ``analytics.compare.compare`` (one pair) or
``compare_strata_batch`` (a whole tick, post-stratified: what ``deploy`` runs), and at
``analytics.planning`` for how a canary splits alpha and plans its horizon; the rest are
the building blocks, exported for reports and validation.

Names load on first use (PEP 562): a command that needs one module does not pay for
scipy's import through the others (``promptd replay`` spent a second importing them).

``compare`` itself is deliberately not re-exported here: binding the function to the name
``analytics.compare`` would shadow the module, and ``import analytics.compare`` would then
hand back a function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analytics.lazy import lazy_exports

_WHERE = {
    "DifferenceArray": "batch",
    "MomentsArray": "batch",
    "SequentialBatch": "batch",
    "compare_batch": "batch",
    "compare_strata_batch": "batch",
    "stratified_differences": "batch",
    "Comparison": "compare",
    "compare_strata": "compare",
    "cohens_d": "effects",
    "cohens_h": "effects",
    "effect_label": "effects",
    "Difference": "estimates",
    "stratified_difference": "estimates",
    "ChiSquare": "fixed",
    "FixedTest": "fixed",
    "chi_square_independence": "fixed",
    "two_proportion_z_test": "fixed",
    "welch_interval": "fixed",
    "welch_t_test": "fixed",
    "Better": "hypotheses",
    "MetricKind": "hypotheses",
    "Side": "hypotheses",
    "newcombe_interval": "intervals",
    "newcombe_p_value": "intervals",
    "wilson_interval": "intervals",
    "Moments": "moments",
    "Adjustment": "multiple",
    "benjamini_hochberg": "multiple",
    "bonferroni": "multiple",
    "holm": "multiple",
    "AlphaSplit": "planning",
    "Horizon": "planning",
    "planned_horizon": "planning",
    "split_alpha": "planning",
    "SampleSize": "power",
    "power_two_means": "power",
    "power_two_proportions": "power",
    "sample_size_two_means": "power",
    "sample_size_two_proportions": "power",
    "sequential_sample_size": "power",
    "MannWhitney": "ranks",
    "hodges_lehmann": "ranks",
    "mann_whitney": "ranks",
    "eliminate_worse_arms": "selection",
    "expected_loss": "selection",
    "probability_best": "selection",
    "ConfidenceSequence": "sequential",
    "DEFAULT_N_STAR": "sequential",
    "Msprt": "sequential",
    "RunningInterval": "sequential",
    "confidence_sequence": "sequential",
    "mixture_rho2": "sequential",
    "msprt_two_proportions": "sequential",
    "multiplier": "sequential",
    "running_update": "sequential",
    "SRM_THRESHOLD": "srm",
    "SrmBatch": "srm",
    "SrmResult": "srm",
    "srm_test": "srm",
    "srm_tests": "srm",
}

__all__ = [
    "DEFAULT_N_STAR",
    "SRM_THRESHOLD",
    "Adjustment",
    "AlphaSplit",
    "Better",
    "ChiSquare",
    "Comparison",
    "ConfidenceSequence",
    "Difference",
    "DifferenceArray",
    "FixedTest",
    "Horizon",
    "MannWhitney",
    "MetricKind",
    "Moments",
    "MomentsArray",
    "Msprt",
    "RunningInterval",
    "SampleSize",
    "SequentialBatch",
    "Side",
    "SrmBatch",
    "SrmResult",
    "benjamini_hochberg",
    "bonferroni",
    "chi_square_independence",
    "cohens_d",
    "cohens_h",
    "compare_batch",
    "compare_strata",
    "compare_strata_batch",
    "confidence_sequence",
    "effect_label",
    "eliminate_worse_arms",
    "expected_loss",
    "hodges_lehmann",
    "holm",
    "mann_whitney",
    "mixture_rho2",
    "msprt_two_proportions",
    "multiplier",
    "newcombe_interval",
    "newcombe_p_value",
    "planned_horizon",
    "power_two_means",
    "power_two_proportions",
    "probability_best",
    "running_update",
    "sample_size_two_means",
    "sample_size_two_proportions",
    "sequential_sample_size",
    "split_alpha",
    "srm_test",
    "srm_tests",
    "stratified_difference",
    "stratified_differences",
    "two_proportion_z_test",
    "welch_interval",
    "welch_t_test",
    "wilson_interval",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals(), __all__)


if TYPE_CHECKING:
    from analytics.batch import (
        DifferenceArray,
        MomentsArray,
        SequentialBatch,
        compare_batch,
        compare_strata_batch,
        stratified_differences,
    )
    from analytics.compare import Comparison, compare_strata
    from analytics.effects import cohens_d, cohens_h, effect_label
    from analytics.estimates import Difference, stratified_difference
    from analytics.fixed import (
        ChiSquare,
        FixedTest,
        chi_square_independence,
        two_proportion_z_test,
        welch_interval,
        welch_t_test,
    )
    from analytics.hypotheses import Better, MetricKind, Side
    from analytics.intervals import newcombe_interval, newcombe_p_value, wilson_interval
    from analytics.moments import Moments
    from analytics.multiple import Adjustment, benjamini_hochberg, bonferroni, holm
    from analytics.planning import AlphaSplit, Horizon, planned_horizon, split_alpha
    from analytics.power import (
        SampleSize,
        power_two_means,
        power_two_proportions,
        sample_size_two_means,
        sample_size_two_proportions,
        sequential_sample_size,
    )
    from analytics.ranks import MannWhitney, hodges_lehmann, mann_whitney
    from analytics.selection import eliminate_worse_arms, expected_loss, probability_best
    from analytics.sequential import (
        DEFAULT_N_STAR,
        ConfidenceSequence,
        Msprt,
        RunningInterval,
        confidence_sequence,
        mixture_rho2,
        msprt_two_proportions,
        multiplier,
        running_update,
    )
    from analytics.srm import SRM_THRESHOLD, SrmBatch, SrmResult, srm_test, srm_tests
