"""Canary policy: how a deployment ramps, what it watches, and when it may promote.

Pydantic, because a policy arrives from settings files and the HTTP API and is stored in
the ``deployment.started`` event; an invalid one must fail with an error naming the field
(the service answers 422) before anything reaches the log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property, lru_cache
from itertools import pairwise
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from analytics.planning import AlphaSplit, Horizon, planned_horizon, split_alpha
from deploy.stats import METRICS

PrimaryMetric = Literal["success_rate", "mean_score"]
MetricName = Literal[
    "success_rate", "mean_score", "correction_rate", "error_rate", "latency", "cost"
]
GuardrailMetric = Literal["correction_rate", "error_rate", "latency", "cost"]
InconclusiveAction = Literal["rollback", "promote", "hold"]

__all__ = [
    "CanaryPolicy",
    "Guardrail",
    "GuardrailMetric",
    "InconclusiveAction",
    "PolicyBook",
    "PrimaryMetric",
    "harm_weights",
    "merge_policy",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Guardrail(_Frozen):
    """A metric the candidate must not make worse than control by more than ``tolerance``.

    Tolerances are on the metric's own scale: rates in absolute proportion (0.02 = two
    points), latency on the log scale (0.10 ~ 10.5% slower), cost in USD per execution, or,
    with ``relative``, as a fraction of control's observed mean.
    """

    metric: GuardrailMetric
    tolerance: float = Field(0.0, ge=0.0)
    relative: bool = False
    # Weight in the objective that picks the survivor among several candidate arms; the
    # guardrails are all lower-is-better, so a positive weight rewards a decrease.
    weight: float = Field(0.0, ge=0.0)
    enabled: bool = True


def _default_guardrails() -> tuple[Guardrail, ...]:
    return (
        Guardrail(metric="correction_rate", tolerance=0.02, weight=1.0),
        Guardrail(metric="error_rate", tolerance=0.02, weight=1.0),
        Guardrail(metric="latency", tolerance=0.10),
        Guardrail(metric="cost", tolerance=0.10, relative=True),
    )


class CanaryPolicy(_Frozen):
    """Everything a canary decision depends on, with the defaults of DESIGN.md section 6.

    ``steps`` are percentages of the full comparison split: at 100 every live arm (control
    and each candidate) serves an equal share, so the last step still has a control to
    compare against; promotion then gives the winner all traffic. One candidate at
    ``[5, 25, 50, 100]`` serves 2.5%, 12.5%, 25% and 50% of requests.

    What is derived rather than set (``plan()`` lists it for admins): the planned horizon
    (``planned_samples_per_arm``, from the margin, ``power``, ``planning_sd`` and the
    promotion alpha) and the default cap equal to it; the tunings of the harm and
    promotion bounds; the alpha of each question (``alpha_split``, explained in
    ``analytics.planning``).
    """

    steps: tuple[float, ...] = (5.0, 25.0, 50.0, 100.0)
    min_samples_per_step: int = Field(200, ge=1, description="executions per arm per step")
    min_step_seconds: float = Field(3_600.0, ge=0.0)
    analysis_interval_seconds: float = Field(300.0, gt=0.0)
    alpha: float = Field(0.05, gt=0.0, lt=0.5)
    primary_metric: PrimaryMetric = "success_rate"
    # Harm on the primary metric: roll back once it is shown worse than control by more
    # than this (0 = any demonstrated loss).
    primary_tolerance: float = Field(0.0, ge=0.0)
    primary_weight: float = Field(1.0, ge=0.0)
    guardrails: tuple[Guardrail, ...] = Field(default_factory=_default_guardrails)
    non_inferiority_margin: float = Field(0.01, ge=0.0)
    require_improvement: bool = False
    approval_before_start: bool = False
    approval_before_promotion: bool = False
    # None: roll back machine-written candidates (no benefit was shown), hold others for
    # an admin (a person chose to ship that text).
    on_inconclusive: InconclusiveAction | None = None
    # The most samples per arm before an inconclusive canary ends. None: the planned
    # horizon (``planned_samples_per_arm``), sized from the margin, power and alpha.
    max_samples_per_arm: int | None = Field(None, ge=1)
    # Planning the horizon: the power with which a candidate as good as control is shown
    # non-inferior by then, assuming this standard deviation of the primary metric (0.5,
    # the largest any metric in [0, 1] can have, so the plan holds at any base rate).
    power: float = Field(0.9, gt=0.0, lt=1.0)
    planning_sd: float = Field(0.5, gt=0.0)
    # Sample-ratio mismatch: chi-square p below srm_threshold halts the deployment when a
    # step is about to advance or conclude. The test is fixed-horizon, so repeating it at
    # every tick would add up false alarms; between decisions only a gross mismatch (p
    # below srm_tripwire, e.g. an arm that stopped reporting) halts it at once.
    srm_threshold: float = Field(0.001, gt=0.0, lt=0.5)
    srm_tripwire: float = Field(1e-5, gt=0.0, lt=0.5)
    srm_min_count: int = Field(100, ge=1)
    # The confidence sequences are asymptotic (a central limit theorem); below this many
    # observations per arm a comparison may not conclude anything.
    min_samples_to_judge: int = Field(30, ge=2)
    # Where the harm bounds are tightest, in samples per arm of an even split: small, so a
    # large harm stops the canary within its first step (the bounds stay valid, and keep
    # tightening, far beyond it).
    harm_tuning_per_arm: int = Field(250, ge=1)
    # Share of each arm's harm alpha given to the primary metric (weighted Holm); the
    # guardrails split the rest. A large harm shows first on the primary metric.
    harm_primary_share: float = Field(0.9, gt=0.0, le=1.0)
    # N* of the promotion and selection bounds in total observations (both arms, even
    # split), fixed before any data. None: the planned horizon, 2 x planned_samples_per_arm.
    sequence_tuning: int | None = Field(None, ge=1)

    @field_validator("steps", mode="after")
    @classmethod
    def _steps_ramp_to_full(cls, steps: tuple[float, ...]) -> tuple[float, ...]:
        if not steps:
            raise ValueError("steps must not be empty; the default is [5, 25, 50, 100]")
        for step in steps:
            if not 0.0 < step <= 100.0:
                raise ValueError(f"every step must be a percentage in (0, 100], got {step}")
        for before, after in pairwise(steps):
            if after <= before:
                raise ValueError(f"steps must be strictly increasing, got {before} then {after}")
        if steps[-1] != 100.0:
            raise ValueError(f"steps must end at 100, got {steps[-1]}")
        return steps

    @field_validator("guardrails", mode="after")
    @classmethod
    def _one_guardrail_per_metric(cls, guardrails: tuple[Guardrail, ...]) -> tuple[Guardrail, ...]:
        metrics = [g.metric for g in guardrails]
        duplicates = sorted({m for m in metrics if metrics.count(m) > 1})
        if duplicates:
            raise ValueError(f"one guardrail per metric; repeated: {duplicates}")
        return guardrails

    @model_validator(mode="after")
    def _horizon_can_be_planned(self) -> CanaryPolicy:
        if self.non_inferiority_margin <= 0.0 and (
            self.max_samples_per_arm is None or self.sequence_tuning is None
        ):
            raise ValueError(
                "non_inferiority_margin 0 plans no horizon: set max_samples_per_arm and "
                "sequence_tuning, or a positive margin"
            )
        return self

    @property
    def last_step(self) -> int:
        """Return the index of the last step (the full split)."""
        return len(self.steps) - 1

    @property
    def promotion_margin(self) -> float:
        """Return how far below control the primary delta may lie and still promote."""
        return 0.0 if self.require_improvement else self.non_inferiority_margin

    @cached_property
    def horizon(self) -> Horizon:
        """Return the planned horizon: samples per arm and the promotion bound's tuning.

        Planned for one candidate, at the promotion alpha, for showing a candidate as good
        as control no worse by the margin (or, with ``require_improvement``, one better by
        the margin shown better) with ``power``. Cached on the (frozen) policy.
        """
        margin = self.non_inferiority_margin
        if margin <= 0.0:
            raise ValueError("a zero non-inferiority margin plans no horizon; set one")
        alphas = self.alpha_split(1)
        return _horizon(margin, self.planning_sd, alphas.promotion, self.power)

    @property
    def planned_samples_per_arm(self) -> int:
        """Return the planned horizon in samples per arm (what the CLI prints)."""
        return self.horizon.samples_per_arm

    @property
    def sample_cap(self) -> int:
        """Return the samples per arm at which an inconclusive canary ends."""
        if self.max_samples_per_arm is not None:
            return self.max_samples_per_arm
        return self.planned_samples_per_arm

    @property
    def promotion_n_star(self) -> float:
        """Return N* of the promotion and selection bounds (total observations)."""
        if self.sequence_tuning is not None:
            return float(self.sequence_tuning)
        return self.horizon.n_star

    @property
    def harm_n_star(self) -> float:
        """Return N* of the harm bounds (total observations of an even split)."""
        return 2.0 * self.harm_tuning_per_arm

    @property
    def nulls_overlap(self) -> bool:
        """Return whether an arm's harm and promotion nulls can both hold (alpha is then
        shared between them; see ``analytics.planning``)."""
        return self.primary_tolerance >= self.promotion_margin

    def alpha_split(self, candidates: int) -> AlphaSplit:
        """Return the alpha of each test for a deployment of ``candidates`` arms."""
        return split_alpha(self.alpha, candidates=candidates, nulls_overlap=self.nulls_overlap)

    def plan(self) -> dict[str, Any]:
        """Return the numbers derived from this policy, JSON-able, for admins to read.

        ``promptd policy`` and ``promptd deployment show`` print these.
        """
        one, three = self.alpha_split(1), self.alpha_split(3)
        planned = self.planned_samples_per_arm if self.non_inferiority_margin > 0 else None
        return {
            "planned_samples_per_arm": planned,
            "max_samples_per_arm": self.sample_cap,
            "promotion_tuning": self.promotion_n_star,
            "harm_tuning": self.harm_n_star,
            "alpha": {
                "harm_per_arm": {"1": one.harm, "3": three.harm},
                "promotion_per_arm": {"1": one.promotion, "3": three.promotion},
                "selection_per_pair": {"1": one.selection, "3": three.selection},
            },
            "srm_unit": "distinct subjects per arm and stratum (executions without a subject "
            "count once each)",
        }

    @cached_property
    def watched(self) -> tuple[tuple[MetricName, float, bool], ...]:
        """Return (metric, tolerance, relative) for the primary metric and each enabled guardrail.

        Cached on the (frozen) policy: a tick over many deployments asks for it constantly.
        """
        rails = [(g.metric, g.tolerance, g.relative) for g in self.guardrails if g.enabled]
        return ((self.primary_metric, self.primary_tolerance, False), *rails)

    @cached_property
    def harm_template(self) -> tuple[list[str], list[str], list[float], list[int]]:
        """Return the harm checks' metrics, sides ("worse"), signed boundaries and the
        positions of the relative ones (their boundary still a fraction of control's mean).

        Cached on the (frozen) policy; callers must not mutate the lists.
        """
        metrics: list[str] = []
        sides: list[str] = []
        nulls: list[float] = []
        relative: list[bool] = []
        for metric, tolerance, scaled in self.watched:
            higher = METRICS[metric].better == "higher"
            metrics.append(metric)
            sides.append("less" if higher else "greater")
            nulls.append(-tolerance if higher else tolerance)
            relative.append(scaled)
        return metrics, sides, nulls, [i for i, scaled in enumerate(relative) if scaled]

    @cached_property
    def harm_weights(self) -> list[float]:
        """Return the weighted-Holm weights of the harm checks in ``harm_template`` order:
        the primary metric holds ``harm_primary_share``, the guardrails split the rest.

        Cached on the (frozen) policy; callers must not mutate the list.
        """
        return harm_weights(self.primary_metric, self.harm_primary_share,
                            self.harm_template[0])

    def inconclusive_action(self, machine_written: bool) -> InconclusiveAction:
        """Return what to do when the last step ends without a conclusion."""
        if self.on_inconclusive is not None:
            return self.on_inconclusive
        return "rollback" if machine_written else "hold"

    def to_json(self) -> dict[str, Any]:
        """Return the policy as a JSON-able dict (what ``deployment.started`` stores)."""
        return self.model_dump(mode="json")


class PolicyBook(_Frozen):
    """Default policy plus per-prompt overrides (partial dicts of ``CanaryPolicy`` fields)."""

    default: CanaryPolicy = Field(default_factory=CanaryPolicy)
    overrides: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("overrides", mode="after")
    @classmethod
    def _overrides_are_valid(
        cls, overrides: dict[str, dict[str, Any]]
    ) -> dict[str, dict[str, Any]]:
        # Validate each merged policy now, so a bad override fails when settings load,
        # not at the first deployment of that prompt.
        for fields in overrides.values():
            CanaryPolicy.model_validate({**CanaryPolicy().model_dump(), **fields})
        return overrides

    def for_prompt(self, prompt: str) -> CanaryPolicy:
        """Return the default policy with this prompt's overrides applied."""
        fields = self.overrides.get(prompt)
        if not fields:
            return self.default
        return merge_policy(self.default, fields)


def harm_weights(primary: str, share: float, metrics: Sequence[str]) -> list[float]:
    """Return weighted-Holm weights for harm checks on ``metrics``: ``share`` for the
    primary metric, the rest split evenly among the guardrails (all to the primary when
    there are none)."""
    rails = len(metrics) - 1
    share = share if rails else 1.0
    # A zero weight could never reject; with a share of 1 a guardrail keeps a sliver.
    rest = max((1.0 - share) / rails, 1e-6) if rails else 0.0
    return [share if m == primary else rest for m in metrics]


@lru_cache(maxsize=256)
def _horizon(margin: float, sd: float, alpha: float, power: float) -> Horizon:
    # A tick folds every deployment's policy afresh from its started event; solving the
    # plan (~1 ms) once per distinct policy rather than once per deployment per tick.
    return planned_horizon(margin, sd, alpha=alpha, power=power)


def merge_policy(base: CanaryPolicy, fields: Mapping[str, Any]) -> CanaryPolicy:
    """Return ``base`` with ``fields`` replaced, validated as a whole."""
    return CanaryPolicy.model_validate({**base.model_dump(), **dict(fields)})
