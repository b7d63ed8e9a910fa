"""Score intervals for a proportion and for a difference of two proportions.

Wilson's interval stays inside [0, 1] and keeps its coverage near 0 and 1, where the Wald
interval collapses to a point; Newcombe's hybrid score interval inherits that for a
difference, which matters for guardrails such as error rates that sit near zero.
"""

from __future__ import annotations

import math

from analytics.hypotheses import Side, check_alpha, check_side, normal_quantile


def _check(successes: int, n: int) -> None:
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")


def wilson_interval(successes: int, n: int, *, alpha: float = 0.05) -> tuple[float, float]:
    """Return the two-sided Wilson score interval for a proportion; (0, 1) when ``n == 0``."""
    alpha = check_alpha(alpha)
    _check(successes, n)
    if n == 0:
        return 0.0, 1.0
    z = normal_quantile(1.0 - alpha / 2.0)
    z2 = z * z
    centre = (successes + z2 / 2.0) / (n + z2)
    half = z / (n + z2) * math.sqrt(successes * (n - successes) / n + z2 / 4.0)
    # Clamp only float noise: the exact interval always lies within [0, 1].
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_interval(
    successes_control: int,
    n_control: int,
    successes_candidate: int,
    n_candidate: int,
    *,
    alpha: float = 0.05,
    side: Side = "two-sided",
) -> tuple[float, float]:
    """Return Newcombe's hybrid score interval for ``p_candidate - p_control``.

    A one-sided interval keeps one bound of the two-sided interval at level ``2 * alpha``.
    Raises ``ValueError`` when either arm is empty.
    """
    alpha, side = check_alpha(alpha), check_side(side)
    _check(successes_control, n_control)
    _check(successes_candidate, n_candidate)
    if n_control == 0 or n_candidate == 0:
        raise ValueError("Newcombe's interval needs at least one observation per arm")
    level = alpha if side == "two-sided" else min(2.0 * alpha, 1.0 - 1e-12)
    p1, p2 = successes_control / n_control, successes_candidate / n_candidate
    l1, u1 = wilson_interval(successes_control, n_control, alpha=level)
    l2, u2 = wilson_interval(successes_candidate, n_candidate, alpha=level)
    delta = p2 - p1
    lower = delta - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2)
    upper = delta + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
    if side == "greater":
        return lower, math.inf
    if side == "less":
        return -math.inf, upper
    return lower, upper
