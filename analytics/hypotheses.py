"""The vocabulary shared by every test: metric kinds, directions, sides, and argument checks.

A *side* is always stated about ``delta = candidate - control`` against a hypothesised
``null``: ``"greater"`` means the alternative is ``delta > null``.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

from scipy import special

MetricKind = Literal["proportion", "mean", "log_mean"]
Better = Literal["higher", "lower"]
Side = Literal["two-sided", "greater", "less"]

METRIC_KINDS: tuple[str, ...] = get_args(MetricKind)
SIDES: tuple[str, ...] = get_args(Side)


def check_alpha(alpha: float) -> float:
    """Return ``alpha`` as a float; raises ``ValueError`` unless it lies strictly in (0, 1)."""
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:  # also rejects NaN, whose comparisons are all False
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    return alpha


def check_side(side: str) -> Side:
    """Return ``side`` unchanged; raises ``ValueError`` unless it is a known alternative."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    return side  # type: ignore[return-value]


def check_kind(kind: str) -> MetricKind:
    """Return ``kind`` unchanged; raises ``ValueError`` unless it is a known metric kind."""
    if kind not in METRIC_KINDS:
        raise ValueError(f"kind must be one of {METRIC_KINDS}, got {kind!r}")
    return kind  # type: ignore[return-value]


def check_better(better: str) -> Better:
    """Return ``better`` unchanged; raises ``ValueError`` unless it is "higher" or "lower"."""
    if better not in ("higher", "lower"):
        raise ValueError(f"better must be 'higher' or 'lower', got {better!r}")
    return better  # type: ignore[return-value]


def check_finite(name: str, value: float) -> float:
    """Return ``value`` as a float; raises ``ValueError`` on NaN or infinity."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return value


def normal_quantile(q: float) -> float:
    """Return the ``q`` quantile of the standard normal distribution."""
    return float(special.ndtri(q))


def normal_p_value(z: float, side: Side) -> float:
    """Return the p-value of a standard-normal statistic ``z`` for the given alternative."""
    if side == "two-sided":
        return float(2.0 * special.ndtr(-abs(z)))
    if side == "greater":
        return float(special.ndtr(-z))
    return float(special.ndtr(z))


def critical_value(alpha: float, side: Side) -> float:
    """Return the standard-normal critical value: z_(1-alpha/2) two-sided, else z_(1-alpha)."""
    return normal_quantile(1.0 - alpha / 2.0) if side == "two-sided" else normal_quantile(1 - alpha)
