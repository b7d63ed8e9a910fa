"""Multiple-testing adjustments agree with statsmodels and work row by row."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from analytics.multiple import Adjustment, benjamini_hochberg, bonferroni, holm

Adjust = Callable[..., Adjustment]

METHODS = [(bonferroni, "bonferroni"), (holm, "holm"), (benjamini_hochberg, "fdr_bh")]


@pytest.mark.parametrize(("adjust", "name"), METHODS)
def test_adjusted_p_values_and_rejections_match_statsmodels(adjust: Adjust, name: str) -> None:
    rng = np.random.default_rng(41)
    for m in (1, 2, 5, 20):
        # statsmodels' Holm runs gc.collect() on every call (~0.2 s in a big process).
        for _ in range(1 if name == "holm" else 10):
            # A mix of true effects (tiny p) and nulls (uniform p), with exact ties too.
            p = np.where(rng.random(m) < 0.3, rng.uniform(0, 0.01, m), rng.uniform(0, 1, m))
            p[rng.random(m) < 0.2] = p[0]
            ours = adjust(p, alpha=0.05)
            reject, corrected, _, _ = multipletests(p, alpha=0.05, method=name)
            np.testing.assert_allclose(ours.p_adjusted, corrected, rtol=1e-12, atol=1e-15)
            np.testing.assert_array_equal(ours.reject, reject)


@pytest.mark.parametrize(("adjust", "name"), METHODS)
def test_adjustment_of_a_matrix_is_the_adjustment_of_each_row(adjust: Adjust, name: str) -> None:
    rng = np.random.default_rng(42)
    p = rng.uniform(0, 0.1, (50, 5))
    whole = adjust(p)
    for row in range(50):
        np.testing.assert_array_equal(whole.p_adjusted[row], adjust(p[row]).p_adjusted)


def test_holm_rejects_everything_bonferroni_does() -> None:
    rng = np.random.default_rng(43)
    p = rng.uniform(0, 0.05, (200, 6))
    assert np.all(holm(p).reject >= bonferroni(p).reject)


def test_adjustments_reject_nan_and_out_of_range_p_values() -> None:
    for bad in ([0.1, math.nan], [0.1, 1.2], [-0.1], []):
        with pytest.raises(ValueError):
            holm(bad)


def test_weighted_holm_with_equal_weights_is_holm() -> None:
    p = np.array([[0.01, 0.04, 0.03, 0.2], [0.5, 0.001, 0.011, 0.02]])
    plain = holm(p, alpha=0.05)
    weighted = holm(p, alpha=0.05, weights=[2.0, 2.0, 2.0, 2.0])
    assert np.allclose(weighted.p_adjusted, plain.p_adjusted, rtol=1e-15)


def test_weighted_holm_gives_a_heavy_hypothesis_its_share_of_alpha() -> None:
    # Weight 0.8 of 1.0: the first hypothesis is tested at 0.8 alpha, plain Holm at alpha/3.
    weights = [0.8, 0.1, 0.1]
    assert holm([0.03, 0.9, 0.9], alpha=0.05, weights=weights).reject.tolist() == [
        True, False, False,
    ]
    assert not holm([0.03, 0.9, 0.9], alpha=0.05).reject[0]
    # A light hypothesis needs p <= 0.1 alpha first, and inherits the rest once one falls.
    assert holm([0.9, 0.004, 0.9], alpha=0.05, weights=weights).reject.tolist() == [
        False, True, False,
    ]
    # Once the first falls, the second holds 0.1 of the 0.2 left: tested at alpha / 2.
    assert holm([0.03, 0.02, 0.9], alpha=0.05, weights=weights).reject.tolist() == [
        True, True, False,
    ]
    assert holm([0.03, 0.03, 0.9], alpha=0.05, weights=weights).reject.tolist() == [
        True, False, False,
    ]


def test_weighted_holm_keeps_the_family_wise_error_at_alpha() -> None:
    rng = np.random.default_rng(91)
    reps = 100_000
    p = rng.uniform(size=(reps, 5))
    rejected = holm(p, alpha=0.05, weights=[0.8, 0.05, 0.05, 0.05, 0.05]).reject.any(axis=1)
    # Every null true: the family-wise error is exactly the weighted Bonferroni's, 0.05.
    assert rejected.mean() <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / reps)


def test_holm_refuses_weights_that_are_not_positive() -> None:
    with pytest.raises(ValueError, match="weights"):
        holm([0.1, 0.2], weights=[1.0, 0.0])
