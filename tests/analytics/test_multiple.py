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
