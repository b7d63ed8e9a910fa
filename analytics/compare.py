"""One call that a report or the canary uses to compare a candidate arm with control.

``compare`` takes the arms' streaming ``Moments``, the metric kind, which direction is
better and alpha, and gives back a typed ``Comparison``: estimate, interval, p-value,
effect size, the method used and one plain-English line. ``method="sequential"`` (the
default) stays valid under continuous monitoring; ``"fixed"`` is for a single look at a
pre-planned sample size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from analytics.effects import cohens_h, effect_label
from analytics.estimates import Difference, check_proportion, min_arm_size, stratified_difference
from analytics.fixed import welch_t_test
from analytics.hypotheses import (
    Better,
    MetricKind,
    Side,
    check_alpha,
    check_better,
    check_finite,
    check_kind,
    check_side,
    critical_value,
    normal_p_value,
)
from analytics.intervals import newcombe_interval, newcombe_p_value
from analytics.moments import Moments
from analytics.sequential import check_n_star, confidence_sequence

__all__ = ["Better", "Comparison", "MetricKind", "Side", "compare", "compare_strata"]

Method = Literal["sequential", "fixed"]


@dataclass(frozen=True, slots=True)
class Comparison:
    """The outcome of comparing a candidate arm with control on one metric."""

    kind: MetricKind
    method: str  # "confidence-sequence", "welch-t", "newcombe-score", "stratified-z"
    estimate: float  # candidate - control, of the means of the Moments (log scale: log_mean)
    lower: float  # -inf/+inf when not enough data, or on the untested side of a one-sided test
    upper: float
    p_value: float  # 1.0 when not enough data; never NaN
    effect_size: float  # Cohen's h for proportions, d for means; 0.0 when undefined
    effect_label: str  # negligible / small / medium / large, or "n/a"
    n_control: int
    n_candidate: int
    enough_data: bool
    reading: str
    alpha: float = 0.05
    side: Side = "two-sided"
    null: float = 0.0

    @property
    def significant(self) -> bool:
        """Whether the data reject ``delta == null`` (in the direction of ``side``) at alpha."""
        return self.enough_data and self.p_value <= self.alpha


def compare(
    control: Moments,
    candidate: Moments,
    *,
    kind: MetricKind,
    better: Better = "higher",
    alpha: float = 0.05,
    method: Method = "sequential",
    side: Side = "two-sided",
    null: float = 0.0,
    n_star: float | None = None,
) -> Comparison:
    """Return the comparison of ``candidate`` with ``control`` on one metric.

    ``null`` is the hypothesised ``delta = candidate - control`` (the canary tests "worse
    than -tolerance" with ``side="less", null=-tolerance`` when higher is better); the
    p-value tests ``delta == null`` or its one-sided version. ``n_star`` (total
    observations) tunes the confidence sequence and is ignored by ``method="fixed"``.
    """
    return compare_strata(
        [(control, candidate)],
        kind=kind, better=better, alpha=alpha, method=method, side=side, null=null,
        n_star=n_star,
    )


def compare_strata(
    strata: Sequence[tuple[Moments, Moments]],
    *,
    kind: MetricKind,
    better: Better = "higher",
    alpha: float = 0.05,
    method: Method = "sequential",
    side: Side = "two-sided",
    null: float = 0.0,
    n_star: float | None = None,
) -> Comparison:
    """Return the post-stratified comparison over ``(control, candidate)`` pairs, one per
    ramp step; a single stratum gives exactly ``compare``.

    Strata are compared within themselves, so changing weights between steps cannot bias
    the estimate, and combined with Cochran-Mantel-Haenszel (precision) weights; the
    sequence runs on the effective sample size (see ``analytics.estimates``), on which
    ``n_star`` is counted too.
    """
    kind, better, side = check_kind(kind), check_better(better), check_side(side)
    alpha, null = check_alpha(alpha), check_finite("null", null)
    if method not in ("sequential", "fixed"):
        raise ValueError(f"method must be 'sequential' or 'fixed', got {method!r}")
    n_star = check_n_star(n_star)
    strata = list(strata)
    if not strata:
        raise ValueError("need at least one (control, candidate) stratum")
    context = _Context(kind, better, alpha, side, null)
    n_control = sum(c.n for c, _ in strata)
    n_candidate = sum(t.n for _, t in strata)
    diff = stratified_difference(strata, kind)
    if diff is None:
        return context.not_enough(strata, n_control, n_candidate, "too few observations")
    if diff.se <= 0.0:
        return context.not_enough(strata, n_control, n_candidate, "no variation in either arm")
    if method == "fixed" and len(strata) == 1:
        return _fixed(strata[0][0], strata[0][1], context, diff)
    if method == "fixed":
        z = (diff.estimate - null) / diff.se
        q = critical_value(alpha, side)
        lower = diff.estimate - q * diff.se if side != "less" else -math.inf
        upper = diff.estimate + q * diff.se if side != "greater" else math.inf
        return context.result("stratified-z", diff, lower, upper, normal_p_value(z, side),
                              n_control, n_candidate)
    cs = confidence_sequence(
        diff.estimate, diff.se, diff.effective_n, alpha=alpha, n_star=n_star, side=side,
        null=null,
    )
    return context.result("confidence-sequence", diff, cs.lower, cs.upper, cs.p_value,
                          n_control, n_candidate)


def _fixed(control: Moments, candidate: Moments, context: _Context, diff: Difference) -> Comparison:
    kind, alpha, side, null = context.kind, context.alpha, context.side, context.null
    if kind == "proportion":
        x_c, x_t = round(control.total), round(candidate.total)
        # Newcombe's score interval keeps its coverage near 0 and 1, where Wald's fails;
        # the p-value inverts the same interval, so the verdict and the interval agree.
        lower, upper = newcombe_interval(x_c, control.n, x_t, candidate.n, alpha=alpha, side=side)
        p_value = newcombe_p_value(x_c, control.n, x_t, candidate.n, side=side, null=null)
        return context.result("newcombe-score", diff, lower, upper, p_value,
                              control.n, candidate.n)
    test = welch_t_test(control, candidate, alpha=alpha, side=side, null=null)
    return context.result("welch-t", diff, test.lower, test.upper, test.p_value,
                          control.n, candidate.n)


@dataclass(frozen=True, slots=True)
class _Context:
    kind: MetricKind
    better: Better
    alpha: float
    side: Side
    null: float

    def effect(self, diff: Difference) -> tuple[float, str]:
        if self.kind == "proportion":
            p_c = min(max(diff.mean_control, 0.0), 1.0)
            p_t = min(max(diff.mean_candidate, 0.0), 1.0)
            h = cohens_h(p_c, p_t)
            return h, effect_label(h)
        if diff.pooled_variance <= 0.0:
            return 0.0, "n/a"
        d = diff.estimate / math.sqrt(diff.pooled_variance)
        return d, effect_label(d)

    def result(
        self, method: str, diff: Difference, lower: float, upper: float, p_value: float,
        n_control: int, n_candidate: int,
    ) -> Comparison:
        effect, label = self.effect(diff)
        reading = describe(
            self.kind, self.better, self.alpha, self.side, self.null, diff.estimate,
            diff.mean_control, diff.mean_candidate, lower, upper, p_value,
            sequential=method == "confidence-sequence",
        )
        return Comparison(
            kind=self.kind, method=method, estimate=diff.estimate, lower=float(lower),
            upper=float(upper), p_value=float(p_value), effect_size=effect, effect_label=label,
            n_control=n_control, n_candidate=n_candidate, enough_data=True, reading=reading,
            alpha=self.alpha, side=self.side, null=self.null,
        )

    def not_enough(
        self, strata: Sequence[tuple[Moments, Moments]], n_control: int, n_candidate: int,
        why: str,
    ) -> Comparison:
        merged_c = sum((c for c, _ in strata), Moments())
        merged_t = sum((t for _, t in strata), Moments())
        if self.kind == "proportion":
            check_proportion(merged_c, "control")
            check_proportion(merged_t, "candidate")
        # A descriptive difference when both arms have data; 0.0 (never NaN) otherwise.
        estimate = merged_t.mean - merged_c.mean if merged_c.n and merged_t.n else 0.0
        minimum = min_arm_size(self.kind)
        need = "observation" if minimum == 1 else "observations, and the arms some variation"
        reading = (
            f"Not enough data yet ({why}): {n_control} control and {n_candidate} candidate "
            f"observations; each arm needs at least {minimum} {need}."
        )
        return Comparison(
            kind=self.kind, method="none", estimate=estimate, lower=-math.inf, upper=math.inf,
            p_value=1.0, effect_size=0.0, effect_label="n/a", n_control=n_control,
            n_candidate=n_candidate, enough_data=False, reading=reading, alpha=self.alpha,
            side=self.side, null=self.null,
        )


def _fmt_delta(kind: MetricKind, value: float) -> str:
    if math.isinf(value):
        return "-inf" if value < 0 else "+inf"
    if kind == "proportion":
        return f"{value * 100:+.1f} pts"
    if kind == "log_mean":
        return f"{math.expm1(value) * 100:+.1f}%"
    return f"{value:+.4g}"


def _fmt_level(kind: MetricKind, value: float) -> str:
    if kind == "proportion":
        return f"{value * 100:.1f}%"
    if kind == "log_mean":
        return f"{math.exp(value):.4g}"
    return f"{value:.4g}"


def _verdict(better: Better, null: float, above: bool, kind: MetricKind) -> str:
    good = above == (better == "higher")
    margin_toward_good = (null > 0) == (better == "higher")
    margin = _fmt_delta(kind, abs(null)).lstrip("+")
    if null == 0.0:
        return "Candidate is better than control" if good else "Candidate is worse than control"
    if good and not margin_toward_good:
        return f"Candidate is non-inferior: no worse than control by more than {margin}"
    if good:
        return f"Candidate is better than control by more than {margin}"
    if not margin_toward_good:
        return f"Candidate is worse than control by more than {margin}"
    return f"Candidate is not better than control by {margin}"


def describe(
    kind: MetricKind, better: Better, alpha: float, side: Side, null: float, estimate: float,
    mean_control: float, mean_candidate: float, lower: float, upper: float, p_value: float,
    *, sequential: bool,
) -> str:
    """Return one plain-English line reading a comparison's numbers."""
    what = {"proportion": "rate", "mean": "mean", "log_mean": "geometric mean"}[kind]
    interval = "CS" if sequential else "CI"
    level = f"{(1 - alpha) * 100:g}%"
    numbers = (
        f"{what} {_fmt_level(kind, mean_candidate)} vs {_fmt_level(kind, mean_control)} "
        f"({_fmt_delta(kind, estimate)}; {level} {interval} {_fmt_delta(kind, lower)} to "
        f"{_fmt_delta(kind, upper)}; p={p_value:.3g})"
    )
    if p_value <= alpha:
        return f"{_verdict(better, null, estimate > null, kind)}: {numbers}."
    if sequential:
        return f"No conclusive difference yet: {numbers}."
    return f"No significant difference: {numbers}."
