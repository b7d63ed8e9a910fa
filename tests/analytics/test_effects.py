"""Effect sizes match their definitions and carry Cohen's conventional labels."""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_effectsize

from analytics.effects import cohens_d, cohens_h, effect_label
from analytics.moments import Moments


def test_cohens_h_matches_statsmodels_for_candidate_against_control() -> None:
    rng = np.random.default_rng(1)
    for p_c, p_t in rng.uniform(0, 1, size=(50, 2)):
        assert cohens_h(p_c, p_t) == pytest.approx(proportion_effectsize(p_t, p_c), abs=1e-12)


def test_cohens_h_is_defined_at_zero_and_one() -> None:
    assert cohens_h(0.0, 1.0) == pytest.approx(math.pi)


def test_cohens_d_is_the_difference_over_the_pooled_sample_sd() -> None:
    rng = np.random.default_rng(2)
    control, candidate = rng.normal(0, 1, 60), rng.normal(0.5, 2, 40)
    pooled = (59 * control.var(ddof=1) + 39 * candidate.var(ddof=1)) / 98
    expected = (candidate.mean() - control.mean()) / math.sqrt(pooled)
    ours = cohens_d(Moments.from_values(control), Moments.from_values(candidate))
    assert ours == pytest.approx(expected, rel=1e-9)


def test_cohens_d_refuses_to_divide_by_zero_variance() -> None:
    with pytest.raises(ValueError, match="neither arm varies"):
        cohens_d(Moments.from_values([1.0, 1.0]), Moments.from_values([2.0, 2.0]))
    with pytest.raises(ValueError, match="two observations"):
        cohens_d(Moments.from_values([1.0]), Moments.from_values([2.0, 3.0]))


@pytest.mark.parametrize(
    ("value", "label"),
    [(0.0, "negligible"), (0.19, "negligible"), (0.2, "small"), (-0.49, "small"),
     (0.5, "medium"), (0.79, "medium"), (-0.8, "large"), (3.0, "large"), (math.nan, "n/a")],
)
def test_effect_label_uses_cohens_thresholds_on_the_magnitude(value: float, label: str) -> None:
    assert effect_label(value) == label
