"""Choosing among several candidate arms.

Bayesian: the Beta-Bernoulli posterior probability that each arm is best, and the expected
loss of picking it (how much success rate is given up, on average, if it is not the best).
Frequentist: sequential elimination of arms whose confidence sequence shows them worse than
another arm, which stays valid however often it is run.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from analytics.estimates import arm_variance, check_proportion, min_arm_size
from analytics.hypotheses import Better, MetricKind, check_alpha, check_better, check_kind
from analytics.moments import Moments
from analytics.sequential import check_n_star, confidence_sequence


def _posterior_draws(
    arms: Sequence[tuple[int, int]], draws: int, seed: int, prior: tuple[float, float]
) -> np.ndarray:
    if not arms:
        raise ValueError("need at least one arm")
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    a0, b0 = float(prior[0]), float(prior[1])
    if not (a0 > 0 and b0 > 0 and np.isfinite(a0) and np.isfinite(b0)):
        raise ValueError(f"prior must be two positive numbers, got {prior!r}")
    successes = np.array([s for s, _ in arms], dtype=float)
    n = np.array([m for _, m in arms], dtype=float)
    if np.any(n < 0) or np.any(successes < 0) or np.any(successes > n):
        raise ValueError("each arm needs 0 <= successes <= n")
    rng = np.random.default_rng(seed)
    return rng.beta(a0 + successes, b0 + n - successes, size=(draws, len(arms)))


def _oriented(samples: np.ndarray, better: Better) -> np.ndarray:
    return samples if check_better(better) == "higher" else -samples


def probability_best(
    arms: Sequence[tuple[int, int]],
    *,
    draws: int = 20_000,
    seed: int = 0,
    prior: tuple[float, float] = (1.0, 1.0),
    better: Better = "higher",
) -> list[float]:
    """Return, per ``(successes, n)`` arm, the posterior probability that its rate is the
    best (seeded Monte Carlo; standard error at most ``0.5 / sqrt(draws)``)."""
    samples = _oriented(_posterior_draws(arms, draws, seed, prior), better)
    wins = np.bincount(np.argmax(samples, axis=1), minlength=len(arms))
    return (wins / draws).tolist()


def expected_loss(
    arms: Sequence[tuple[int, int]],
    *,
    draws: int = 20_000,
    seed: int = 0,
    prior: tuple[float, float] = (1.0, 1.0),
    better: Better = "higher",
) -> list[float]:
    """Return, per arm, the posterior expected shortfall of its rate from the best arm's
    (``E[max_j rate_j - rate_i]``, in rate units; 0 for an arm certain to be best)."""
    samples = _oriented(_posterior_draws(arms, draws, seed, prior), better)
    return (samples.max(axis=1, keepdims=True) - samples).mean(axis=0).tolist()


def eliminate_worse_arms(
    arms: Sequence[Moments],
    *,
    kind: MetricKind,
    better: Better = "higher",
    alpha: float = 0.05,
    n_star: float | None = None,
    active: Sequence[bool] | None = None,
) -> list[bool]:
    """Return which arms survive: an arm is eliminated once a one-sided confidence
    sequence shows some other active arm better than it.

    Every ordered pair is tested at ``alpha / (k (k - 1))`` with ``k = len(arms)``, so with
    probability at least ``1 - alpha`` the truly best arm is never eliminated, at any
    number of looks. Pass the previous result as ``active``: eliminations are final.
    """
    kind, better, alpha = check_kind(kind), check_better(better), check_alpha(alpha)
    n_star = check_n_star(n_star)
    k = len(arms)
    survivors = [True] * k if active is None else [bool(a) for a in active]
    if len(survivors) != k:
        raise ValueError(f"active has {len(survivors)} entries for {k} arms")
    if k < 2:
        return survivors
    if kind == "proportion":
        for i, arm in enumerate(arms):
            check_proportion(arm, f"arm {i}")
    pair_alpha = alpha / (k * (k - 1))
    sign = 1.0 if better == "higher" else -1.0
    minimum = min_arm_size(kind)
    usable = np.array([s and arm.n >= minimum for s, arm in zip(survivors, arms, strict=True)])
    means = np.array([arm.mean if arm.n else 0.0 for arm in arms])
    n = np.array([float(arm.n) for arm in arms])
    var_of_mean = np.array([arm_variance(arm, kind) / arm.n if arm.n else 0.0 for arm in arms])
    # All ordered pairs at once: row i is the arm under test, column j its challenger, and
    # delta[i, j] how much better j looks than i in the "better" direction.
    delta = sign * (means[None, :] - means[:, None])
    se = np.sqrt(var_of_mean[:, None] + var_of_mean[None, :])
    tested = usable[:, None] & usable[None, :] & ~np.eye(k, dtype=bool)
    # The effective size of each pair (4 n_i n_j / (n_i + n_j)), as compare_strata uses.
    pair_n = 4.0 * n[:, None] * n[None, :] / np.maximum(n[:, None] + n[None, :], 1.0)
    cs = confidence_sequence(
        delta, np.where(tested, se, 0.0), np.where(tested, pair_n, 0.0),
        alpha=pair_alpha, n_star=n_star, side="greater",
    )
    eliminated = np.any(tested & (cs.p_value <= pair_alpha), axis=1)
    return [s and not bool(e) for s, e in zip(survivors, eliminated, strict=True)]
