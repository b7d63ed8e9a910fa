"""Inference that stays valid however often it is looked at.

The building block is the asymptotic confidence sequence of Waudby-Smith et al. (2023,
"Time-uniform central limit theory and asymptotic confidence sequences", eq. 9), in the
form GrowthBook's gbstats uses. With ``N`` the total sample size (both arms), ``se`` the
standard error of the difference and ``x = N * rho^2``:

    rho^2     = (-2 ln a + ln(1 - 2 ln a)) / N*          (a = alpha; 2 alpha one-sided)
    two-sided: half-width = se * sqrt(2 (x + 1) / x * ln(sqrt(x + 1) / alpha))
    one-sided: half-width = se * sqrt(2 (x + 1) / x * ln(1 + sqrt(x + 1) / (2 alpha)))

(``se^2 * N`` is the per-observation variance ``s^2`` of the brief's form, so this is
``s * sqrt(2 (N rho^2 + 1) / (N^2 rho^2) * ...)``.) ``N*`` is the total sample size at which
the sequence is tightest; it must be fixed before the data are seen, never derived from
them. The always-valid p-value inverts the same Gaussian mixture: ``p <= alpha`` exactly
when the null lies outside the sequence, so the two never disagree.

What ``N`` counts: the sequence is a Gaussian mixture martingale in *information time*
(``1 / se^2``), and ``N * rho^2`` stands for ``tau^2 / se^2`` with the mixture variance
``tau^2 = rho^2 s^2`` fixed in advance. For one evenly split comparison the total number of
observations is that clock. For post-stratified canary data, whose steps split traffic
unevenly, pass the *effective* total of ``analytics.estimates.stratified_difference``
(``effective_n``): the evenly split size of the same precision. ``n_star`` is then in the
same unit, "total observations of an even split".

Every function here broadcasts over numpy arrays (``alpha`` and ``n_star`` included), so
one analysis tick over thousands of deployments is a handful of vector operations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.hypotheses import Side, check_alpha, check_finite, check_side

# N* (total observations, both arms) when the caller has no plan. Promptd's canary steps
# typically collect a few hundred to a few thousand executions per arm; the sequence is
# widest relative to its best when N is far *below* N* (the penalty above N* grows only
# like sqrt(ln N)), so the default errs low. See tests/perf/bench_stats.py for the choice.
DEFAULT_N_STAR = 1_000.0

ArrayLike = Any  # float or numpy array; every function broadcasts


@dataclass(frozen=True, slots=True, eq=False)
class ConfidenceSequence:
    """Always-valid bounds on ``delta`` and the always-valid p-value for ``delta == null``.

    Fields are floats for scalar input and arrays for array input.
    """

    lower: ArrayLike
    upper: ArrayLike
    p_value: ArrayLike


def mixture_rho2(alpha: float, n_star: float, side: Side = "two-sided") -> float:
    """Return the mixture precision rho^2 that makes the sequence tightest at ``n_star``."""
    alpha, side = check_alpha(alpha), check_side(side)
    n_star = check_n_star(n_star)
    # gbstats tunes a one-sided sequence as a two-sided one at 2 alpha; capped below 1 so
    # the tuning stays defined for any alpha in (0, 1) (validity does not depend on it).
    a = alpha if side == "two-sided" else min(2.0 * alpha, 0.5)
    return (-2.0 * math.log(a) + math.log(1.0 - 2.0 * math.log(a))) / n_star


def check_n_star(n_star: float | None) -> float:
    """Return ``n_star`` (or the default) as a float; raises ``ValueError`` unless positive."""
    if n_star is None:
        return DEFAULT_N_STAR
    n_star = float(n_star)
    if not (math.isfinite(n_star) and n_star > 0.0):
        raise ValueError(f"n_star must be a positive number of observations, got {n_star!r}")
    return n_star


def _array_tuning(
    alpha: ArrayLike, n_star: ArrayLike, side: Side
) -> tuple[np.ndarray, np.ndarray]:
    """Return (alpha, rho^2) as arrays, validated element-wise as the scalar path does."""
    a = np.asarray(alpha, dtype=float)
    if not np.all((a > 0.0) & (a < 1.0)):
        raise ValueError("alpha must lie in (0, 1)")
    if n_star is None:
        tuned = np.asarray(DEFAULT_N_STAR)
    else:
        tuned = np.asarray(n_star, dtype=float)
        if not np.all(np.isfinite(tuned) & (tuned > 0.0)):
            raise ValueError("n_star must be a positive number of observations")
    tune_at = a if side == "two-sided" else np.minimum(2.0 * a, 0.5)
    rho2 = (-2.0 * np.log(tune_at) + np.log(1.0 - 2.0 * np.log(tune_at))) / tuned
    return a, rho2


def _log_boundary(x: np.ndarray, alpha: ArrayLike, side: Side) -> np.ndarray:
    root = np.sqrt(x + 1.0)
    if side == "two-sided":
        return np.log(root / alpha)
    return np.log1p(root / (2.0 * alpha))


def multiplier(n: ArrayLike, *, alpha: float, n_star: float | None, side: Side) -> ArrayLike:
    """Return half-width / standard error at total sample size ``n`` (the sequential z)."""
    alpha, side = check_alpha(alpha), check_side(side)
    x = np.asarray(n, dtype=float) * mixture_rho2(alpha, check_n_star(n_star), side)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.sqrt(2.0 * (x + 1.0) / x * _log_boundary(x, alpha, side))
    m = np.where(x > 0.0, m, np.inf)
    return float(m) if m.ndim == 0 else m


def confidence_sequence(
    estimate: ArrayLike,
    se: ArrayLike,
    n: ArrayLike,
    *,
    alpha: ArrayLike = 0.05,
    n_star: ArrayLike | None = None,
    side: Side = "two-sided",
    null: ArrayLike = 0.0,
) -> ConfidenceSequence:
    """Return the asymptotic confidence sequence and always-valid p-value for ``delta``.

    ``estimate`` is candidate - control, ``se`` its standard error, ``n`` the number of
    observations behind it on the scale of ``n_star`` (both arms; the effective total for
    post-stratified data, see the module docstring). Where ``se`` or ``n`` is not positive
    there is no information: the bounds are infinite and the p-value is 1. A one-sided sequence
    bounds one side only (``"greater"``: a lower bound, the alternative ``delta > null``).
    Raises ``ValueError`` on NaN or infinite estimates or standard errors.
    """
    side = check_side(side)
    if all(np.ndim(v) == 0 for v in (estimate, se, n, null, alpha, n_star)):
        # One pair (the common call from ``compare``): plain floats are ~20x faster than
        # numpy scalars; the array path below computes the same formulas.
        alpha = check_alpha(alpha)  # type: ignore[arg-type]
        rho2 = mixture_rho2(alpha, check_n_star(n_star), side)  # type: ignore[arg-type]
        return _scalar_sequence(
            float(estimate), float(se), float(n), float(null), alpha, side, rho2
        )
    alpha, rho2 = _array_tuning(alpha, n_star, side)
    est = np.asarray(estimate, dtype=float)
    se_ = np.asarray(se, dtype=float)
    n_ = np.asarray(n, dtype=float)
    null_ = np.asarray(null, dtype=float)
    for name, value in (("estimate", est), ("se", se_), ("n", n_), ("null", null_)):
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{name} must be finite (no NaN or infinity)")
    informed = (se_ > 0.0) & (n_ > 0.0)
    x = np.where(informed, n_ * rho2, 1.0)
    safe_se = np.where(informed, se_, 1.0)
    log_bound = _log_boundary(x, alpha, side)
    half = safe_se * np.sqrt(2.0 * (x + 1.0) / x * log_bound)
    z = (est - null_) / safe_se
    q = x * z * z / (2.0 * (x + 1.0))  # log of the mixture martingale, plus 0.5 ln(x+1)
    half_log_root = 0.5 * np.log1p(x)
    with np.errstate(divide="ignore", over="ignore"):
        if side == "two-sided":
            log_p = half_log_root - q
        else:
            # p = sqrt(x+1) / (2 (e^q - 1)), written in logs so large q cannot overflow.
            log_p = half_log_root - math.log(2.0) - (q + np.log(-np.expm1(-q)))
            toward = z > 0.0 if side == "greater" else z < 0.0
            log_p = np.where(toward, log_p, 0.0)
    p = np.where(informed, np.minimum(1.0, np.exp(np.minimum(log_p, 0.0))), 1.0)
    lower = np.where(informed & (side != "less"), est - half, -np.inf)
    upper = np.where(informed & (side != "greater"), est + half, np.inf)
    if lower.ndim == 0:
        return ConfidenceSequence(float(lower), float(upper), float(p))
    return ConfidenceSequence(lower, upper, p)


def _scalar_sequence(
    estimate: float, se: float, n: float, null: float, alpha: float, side: Side, rho2: float
) -> ConfidenceSequence:
    for name, value in (("estimate", estimate), ("se", se), ("n", n), ("null", null)):
        check_finite(name, value)
    if not (se > 0.0 and n > 0.0):
        return ConfidenceSequence(-math.inf, math.inf, 1.0)
    x = n * rho2
    root = math.sqrt(x + 1.0)
    log_bound = math.log(root / alpha) if side == "two-sided" else math.log1p(root / (2 * alpha))
    half = se * math.sqrt(2.0 * (x + 1.0) / x * log_bound)
    z = (estimate - null) / se
    q = x * z * z / (2.0 * (x + 1.0))
    half_log_root = 0.5 * math.log1p(x)
    if side == "two-sided":
        log_p = half_log_root - q
    elif q > 0.0 and ((z > 0.0) if side == "greater" else (z < 0.0)):
        log_p = half_log_root - math.log(2.0) - (q + math.log(-math.expm1(-q)))
    else:
        log_p = 0.0
    p = math.exp(min(log_p, 0.0))
    lower = estimate - half if side != "less" else -math.inf
    upper = estimate + half if side != "greater" else math.inf
    return ConfidenceSequence(lower, upper, p)


@dataclass(frozen=True, slots=True)
class RunningInterval:
    """The intersection of every interval seen so far and the smallest p-value seen.

    A confidence sequence covers at all times at once, so intersecting its intervals (and
    taking the running minimum of its p-values) stays valid, and a conclusion reached at
    one look can never flip back at the next. The intersection can come out empty only
    when the sequence has failed to cover, which happens with probability at most alpha.
    """

    lower: float = -math.inf
    upper: float = math.inf
    p_value: float = 1.0
    looks: int = 0

    def update(self, lower: float, upper: float, p_value: float) -> RunningInterval:
        """Return this running interval narrowed by one more look."""
        for name, value in (("lower", lower), ("upper", upper)):
            if math.isnan(value):
                raise ValueError(f"{name} must not be NaN")
        check_finite("p_value", p_value)
        if not 0.0 <= p_value <= 1.0:
            raise ValueError(f"p_value must lie in [0, 1], got {p_value!r}")
        return RunningInterval(
            max(self.lower, lower), min(self.upper, upper), min(self.p_value, p_value),
            self.looks + 1,
        )

    @property
    def is_empty(self) -> bool:
        """Whether the intersection has no points left (the sequence failed to cover)."""
        return self.lower > self.upper


def running_update(
    lower: ArrayLike,
    upper: ArrayLike,
    p_value: ArrayLike,
    new_lower: ArrayLike,
    new_upper: ArrayLike,
    new_p_value: ArrayLike,
) -> tuple[ArrayLike, ArrayLike, ArrayLike]:
    """Return (lower, upper, p_value) narrowed by one more look, element-wise over arrays."""
    return (
        np.maximum(lower, new_lower),
        np.minimum(upper, new_upper),
        np.minimum(p_value, new_p_value),
    )


@dataclass(frozen=True, slots=True)
class Msprt:
    """The mixture likelihood ratio of an mSPRT, its always-valid p-value, and the verdict."""

    likelihood_ratio: float
    p_value: float  # min(1, 1 / likelihood_ratio); keep a running minimum across looks
    reject: bool  # likelihood_ratio >= 1 / alpha


def msprt_two_proportions(
    successes_control: int,
    n_control: int,
    successes_candidate: int,
    n_candidate: int,
    *,
    tau2: float,
    alpha: float = 0.05,
    null: float = 0.0,
) -> Msprt:
    """Return the mixture SPRT of Johari et al. (2017) for ``p_candidate - p_control == null``.

    A normal mixing distribution N(null, tau2) over the difference gives the ratio
    ``sqrt(v / (v + tau2)) * exp(tau2 (d - null)^2 / (2 v (v + tau2)))`` with ``d`` the
    observed difference and ``v`` its plug-in variance. With ``tau2 = rho^2 * N * v`` it is
    exactly the mixture behind ``confidence_sequence``; here ``tau2`` is fixed in advance,
    which is what makes it an independent cross-check. An empty arm, or a difference with
    no variance, carries no evidence (ratio 1).
    """
    alpha, null = check_alpha(alpha), check_finite("null", null)
    tau2 = check_finite("tau2", tau2)
    if tau2 <= 0.0:
        raise ValueError(f"tau2 must be positive, got {tau2!r}")
    for arm, s, n in (
        ("control", successes_control, n_control),
        ("candidate", successes_candidate, n_candidate),
    ):
        if n < 0 or not 0 <= s <= n:
            raise ValueError(f"{arm}: need 0 <= successes <= n, got {s} of {n}")
    if n_control == 0 or n_candidate == 0:
        return Msprt(1.0, 1.0, False)
    p_control, p_candidate = successes_control / n_control, successes_candidate / n_candidate
    v = p_control * (1 - p_control) / n_control + p_candidate * (1 - p_candidate) / n_candidate
    if v <= 0.0:
        return Msprt(1.0, 1.0, False)
    d = p_candidate - p_control - null
    log_ratio = 0.5 * math.log(v / (v + tau2)) + tau2 * d * d / (2.0 * v * (v + tau2))
    ratio = math.exp(min(log_ratio, 700.0))  # e^700 is already past any 1/alpha
    p = min(1.0, math.exp(-log_ratio)) if log_ratio > -700 else 1.0
    return Msprt(ratio, p, ratio >= 1.0 / alpha)
