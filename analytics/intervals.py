"""Score intervals for a proportion and for a difference of two proportions.

Wilson's interval stays inside [0, 1] and keeps its coverage near 0 and 1, where the Wald
interval collapses to a point; Newcombe's hybrid score interval inherits that for a
difference, which matters for guardrails such as error rates that sit near zero.
"""

from __future__ import annotations

import math

from scipy import optimize, special

from analytics.hypotheses import Side, check_alpha, check_finite, check_side, normal_quantile


def _check(successes: int, n: int) -> None:
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")


def wilson_interval(successes: int, n: int, *, alpha: float = 0.05) -> tuple[float, float]:
    """Return the two-sided Wilson score interval for a proportion; (0, 1) when ``n == 0``."""
    alpha = check_alpha(alpha)
    _check(successes, n)
    if n == 0:
        return 0.0, 1.0
    return _wilson(successes, n, normal_quantile(1.0 - alpha / 2.0))


def _wilson(successes: int, n: int, z: float) -> tuple[float, float]:
    z2 = z * z
    centre = (successes + z2 / 2.0) / (n + z2)
    half = z / (n + z2) * math.sqrt(successes * (n - successes) / n + z2 / 4.0)
    # Clamp only float noise: the exact interval always lies within [0, 1].
    return max(0.0, centre - half), min(1.0, centre + half)


def _newcombe(x_c: int, n_c: int, x_t: int, n_t: int, z: float) -> tuple[float, float]:
    p1, p2 = x_c / n_c, x_t / n_t
    l1, u1 = _wilson(x_c, n_c, z)
    l2, u2 = _wilson(x_t, n_t, z)
    delta = p2 - p1
    return (
        delta - math.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2),
        delta + math.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2),
    )


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
    lower, upper = _newcombe(
        successes_control, n_control, successes_candidate, n_candidate,
        normal_quantile(1.0 - level / 2.0),
    )
    if side == "greater":
        return lower, math.inf
    if side == "less":
        return -math.inf, upper
    return lower, upper


# Past this z every interval is wider than any difference of two proportions can be far.
_Z_MAX = 40.0


def newcombe_p_value(
    successes_control: int,
    n_control: int,
    successes_candidate: int,
    n_candidate: int,
    *,
    side: Side = "two-sided",
    null: float = 0.0,
) -> float:
    """Return the p-value that inverts Newcombe's interval for ``delta == null``.

    ``p <= alpha`` exactly when ``newcombe_interval(..., alpha=alpha, side=side)`` excludes
    ``null``, so a test and its interval can never contradict each other (the pooled
    z-test does in small samples, and calls 0/10 against 0/10 significant). The bound that
    faces ``null`` moves monotonically with the critical value ``z``; the p-value is the
    tail area beyond the ``z`` at which that bound reaches ``null``. One-sided, a
    difference on the wrong side of ``null`` gets ``1 -`` the opposite one-sided p-value,
    and ``delta == null`` gets 0.5 (two-sided: 1). Raises ``ValueError`` on an empty arm.
    """
    side, null = check_side(side), check_finite("null", null)
    _check(successes_control, n_control)
    _check(successes_candidate, n_candidate)
    if n_control == 0 or n_candidate == 0:
        raise ValueError("Newcombe's p-value needs at least one observation per arm")
    delta = successes_candidate / n_candidate - successes_control / n_control
    if delta == null:
        return 1.0 if side == "two-sided" else 0.5
    above = delta > null
    counts = (successes_control, n_control, successes_candidate, n_candidate)

    def reach(z: float) -> float:  # > 0 while the facing bound still excludes null
        lower, upper = _newcombe(*counts, z)
        return lower - null if above else null - upper

    if reach(_Z_MAX) > 0.0:
        z = _Z_MAX
    else:
        z = optimize.brentq(reach, 0.0, _Z_MAX, xtol=1e-12, rtol=1e-14)
    one_tail = float(special.ndtr(-z))
    if side == "two-sided":
        return min(1.0, 2.0 * one_tail)
    toward = above if side == "greater" else not above
    return one_tail if toward else 1.0 - one_tail
