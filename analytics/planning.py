"""How a canary spends its error budget and how long it plans to run.

A canary asks three questions of its data, each with its own always-valid test, and each
test is tuned to its question (``n_star``, in effective total observations, see
``analytics.sequential``):

* **Harm** - is a candidate worse than control beyond a tolerance? One-sided confidence
  sequences on the primary metric and every guardrail, weighted Holm across them (the
  primary metric gets most of the share, because that is where a large harm shows first).
  Tuned *small* (``harm_n_star``, a few hundred observations): a large harm then stops the
  canary after few exposures, and a small one is still caught, later, since a mixture
  sequence stays valid and keeps tightening however far past its tuning it runs.
* **Promotion** - is a candidate no worse than control by more than the margin (or better,
  when an improvement is required)? One one-sided lower bound, tuned to the *planned
  horizon* (``planned_horizon``), where that question is decided.
* **Selection** - with several candidates, is one arm worse than another? Every ordered
  pair of candidate arms, so that choosing "the best" after looking at the data cannot
  inflate the error.

Alpha (``split_alpha``), for a policy alpha ``a`` and ``k`` candidate arms:

* *Shipping a bad prompt* (promoting an arm that is worse than the promotion boundary):
  each arm's promotion bound at ``a / k`` (Bonferroni over arms), so at most ``a``.
* *Throwing away a good prompt* (rolling back or eliminating an arm that harms nothing
  beyond tolerance, or that no other arm beats): with one candidate the harm checks get
  all of ``a``; with ``k > 1`` half goes to harm (``a / (2k)`` per arm) and half to
  selection (``a / (2 k (k - 1))`` per ordered pair), so at most ``a`` in all.
* *Between harm and promotion*: an arm's harm null (``delta >= -tolerance``) and its
  promotion null (``delta <= -margin``) cannot both hold when the tolerance is below the
  margin (the defaults: 0 and 1 point). Whatever the truth, at most one of the two tests can
  err, so each may use the whole budget and the pair still errs with probability at most
  ``a`` (the partitioning principle, Finner and Strassburger 2002). Where the two nulls
  overlap (a tolerance at or above the margin, or an improvement required with tolerance
  0, which meet at ``delta = 0``), both budgets are halved so that their sum stays ``a``.

Every bound is a confidence sequence, so each of these holds under continuous monitoring,
at every tick, however long the canary runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from analytics.hypotheses import check_alpha, check_finite
from analytics.power import sequential_sample_size


@dataclass(frozen=True, slots=True)
class AlphaSplit:
    """The alpha each test of a canary runs at (see the module docstring)."""

    harm: float  # per candidate arm, for its family of harm checks (weighted Holm)
    promotion: float  # per candidate arm, for its promotion bound
    selection: float  # per ordered pair of candidate arms (0.0 with one candidate)


def split_alpha(alpha: float, *, candidates: int, nulls_overlap: bool) -> AlphaSplit:
    """Return the alpha of every test of a canary with ``candidates`` arms.

    ``nulls_overlap``: whether the harm null and the promotion null of one arm can hold at
    once (tolerance >= promotion margin); then the two budgets are halved.
    """
    alpha = check_alpha(alpha)
    if candidates < 1:
        raise ValueError(f"a canary has at least one candidate arm, got {candidates}")
    shared = 0.5 if nulls_overlap else 1.0
    if candidates == 1:
        return AlphaSplit(harm=alpha * shared, promotion=alpha * shared, selection=0.0)
    k = candidates
    return AlphaSplit(
        harm=alpha * shared / (2 * k),
        promotion=alpha * shared / k,
        selection=alpha / (2 * k * (k - 1)),
    )


@dataclass(frozen=True, slots=True)
class Horizon:
    """A planned sample size per arm and the tuning that makes it reach its power."""

    samples_per_arm: int
    n_star: float  # effective total observations at which the promotion bound is tuned


def planned_horizon(
    margin: float, sd: float, *, alpha: float, power: float, iterations: int = 50
) -> Horizon:
    """Return the per-arm sample size at which an evenly split canary whose candidate is
    as good as control shows it no worse by ``margin`` with probability ``power``.

    The promotion bound is tuned where it is needed: ``n_star`` is the horizon itself (both
    arms), so the horizon is the fixed point of ``sequential_sample_size`` with its own
    tuning. ``sd`` is the per-observation standard deviation assumed for the plan (0.5 is
    the largest any metric in [0, 1] can have). A candidate that is better, or a metric
    that varies less, gets there sooner; the bound may also cross before the horizon.
    """
    margin, sd = check_finite("margin", margin), check_finite("sd", sd)
    if margin <= 0.0:
        raise ValueError(f"a horizon needs a positive margin, got {margin!r}")
    if sd <= 0.0:
        raise ValueError(f"sd must be positive, got {sd!r}")
    n_star: float | None = None
    size = sequential_sample_size(margin, sd, alpha=alpha, power=power, side="greater")
    for _ in range(iterations):
        n_star = 2.0 * size.exact_control
        size = sequential_sample_size(
            margin, sd, alpha=alpha, power=power, side="greater", n_star=n_star
        )
        if abs(2.0 * size.exact_control - n_star) < 1.0:
            break
    return Horizon(samples_per_arm=size.n_control, n_star=float(2 * size.n_control))

