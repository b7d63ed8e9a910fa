"""Standardised effect sizes with Cohen's conventional labels."""

from __future__ import annotations

import math

from analytics.moments import Moments

# Cohen (1988): 0.2 small, 0.5 medium, 0.8 large, for both d and h.
_THRESHOLDS: tuple[tuple[float, str], ...] = ((0.8, "large"), (0.5, "medium"), (0.2, "small"))


def effect_label(effect_size: float) -> str:
    """Return Cohen's label for ``|effect_size|``: negligible, small, medium, large, or n/a."""
    if not math.isfinite(effect_size):
        return "n/a"
    magnitude = abs(effect_size)
    for threshold, label in _THRESHOLDS:
        if magnitude >= threshold:
            return label
    return "negligible"


def cohens_h(p_control: float, p_candidate: float) -> float:
    """Return Cohen's h, ``2 asin sqrt(p_candidate) - 2 asin sqrt(p_control)``."""
    for name, p in (("p_control", p_control), ("p_candidate", p_candidate)):
        if not 0.0 <= p <= 1.0:  # also rejects NaN
            raise ValueError(f"{name} must lie in [0, 1], got {p!r}")
    return 2.0 * math.asin(math.sqrt(p_candidate)) - 2.0 * math.asin(math.sqrt(p_control))


def cohens_d(control: Moments, candidate: Moments) -> float:
    """Return Cohen's d: the difference of means over the pooled (ddof=1) standard deviation.

    Raises ``ValueError`` when it is undefined: fewer than two observations per arm, or no
    variance in either arm.
    """
    if control.n < 2 or candidate.n < 2:
        raise ValueError(
            f"Cohen's d needs two observations per arm, got {control.n} and {candidate.n}"
        )
    pooled = (
        (control.n - 1) * control.variance + (candidate.n - 1) * candidate.variance
    ) / (control.n + candidate.n - 2)
    if pooled <= 0.0:
        raise ValueError("Cohen's d is undefined when neither arm varies")
    return (candidate.mean - control.mean) / math.sqrt(pooled)
