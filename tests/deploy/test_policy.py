"""Canary policy: validated steps, defaults, per-prompt overrides."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from analytics.planning import planned_horizon
from deploy.policy import CanaryPolicy, Guardrail, PolicyBook, merge_policy


def test_default_policy_ramps_5_25_50_100_and_watches_four_guardrails() -> None:
    policy = CanaryPolicy()
    assert policy.steps == (5.0, 25.0, 50.0, 100.0)
    assert [g.metric for g in policy.guardrails] == [
        "correction_rate",
        "error_rate",
        "latency",
        "cost",
    ]
    assert policy.last_step == 3


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([5, 25, 25, 100], "strictly increasing"),
        ([50, 25, 100], "strictly increasing"),
        ([5, 25, 50], "must end at 100"),
        ([0, 50, 100], r"in \(0, 100\]"),
        ([5, 150], r"in \(0, 100\]"),
        ([], "must not be empty"),
    ],
)
def test_invalid_step_list_is_a_validation_error_naming_the_field(
    steps: list[float], message: str
) -> None:
    with pytest.raises(ValidationError, match=message) as raised:
        CanaryPolicy(steps=steps)  # type: ignore[arg-type]
    assert raised.value.errors()[0]["loc"] == ("steps",)


def test_repeated_guardrail_metric_is_rejected() -> None:
    with pytest.raises(ValidationError, match="one guardrail per metric"):
        CanaryPolicy(guardrails=(Guardrail(metric="cost"), Guardrail(metric="cost")))


def test_unknown_field_is_rejected_rather_than_ignored() -> None:
    with pytest.raises(ValidationError, match="stepz"):
        CanaryPolicy.model_validate({"stepz": [5, 100]})


def test_policy_round_trips_through_json_unchanged() -> None:
    policy = CanaryPolicy(steps=(10, 100), require_improvement=True, sequence_tuning=500)
    assert CanaryPolicy.model_validate(json.loads(json.dumps(policy.to_json()))) == policy


def test_per_prompt_override_replaces_only_the_named_fields() -> None:
    book = PolicyBook(
        default=CanaryPolicy(alpha=0.01),
        overrides={"support/triage": {"steps": [10, 50, 100], "approval_before_promotion": True}},
    )
    triage = book.for_prompt("support/triage")
    assert triage.steps == (10.0, 50.0, 100.0)
    assert triage.approval_before_promotion is True
    assert triage.alpha == 0.01
    assert book.for_prompt("other") == book.default


def test_invalid_override_fails_when_the_book_is_loaded() -> None:
    with pytest.raises(ValidationError, match="must end at 100"):
        PolicyBook(overrides={"p": {"steps": [5, 50]}})


def test_merge_validates_the_result_as_a_whole() -> None:
    with pytest.raises(ValidationError, match="alpha"):
        merge_policy(CanaryPolicy(), {"alpha": 0.9})


def test_inconclusive_default_rolls_back_machine_candidates_and_holds_human_ones() -> None:
    default = CanaryPolicy()
    assert default.inconclusive_action(machine_written=True) == "rollback"
    assert default.inconclusive_action(machine_written=False) == "hold"
    assert CanaryPolicy(on_inconclusive="promote").inconclusive_action(True) == "promote"


def test_promotion_is_tuned_at_the_planned_horizon_unless_told_otherwise() -> None:
    policy = CanaryPolicy()
    assert policy.promotion_n_star == 2 * policy.planned_samples_per_arm
    assert CanaryPolicy(sequence_tuning=300).promotion_n_star == 300
    assert policy.harm_n_star == 2 * policy.harm_tuning_per_arm < policy.promotion_n_star


def test_default_cap_is_the_planned_horizon_from_margin_power_and_alpha() -> None:
    policy = CanaryPolicy()
    horizon = planned_horizon(
        policy.non_inferiority_margin, policy.planning_sd, alpha=policy.alpha, power=policy.power
    )
    assert policy.max_samples_per_arm is None
    assert policy.sample_cap == policy.planned_samples_per_arm == horizon.samples_per_arm
    # A wider margin plans a shorter canary; an explicit cap wins.
    assert CanaryPolicy(non_inferiority_margin=0.02).sample_cap < policy.sample_cap / 3
    assert CanaryPolicy(max_samples_per_arm=5_000).sample_cap == 5_000
    plan = policy.plan()
    assert plan["planned_samples_per_arm"] == plan["max_samples_per_arm"] == policy.sample_cap
    assert json.loads(json.dumps(plan)) == plan


def test_an_override_of_the_margin_replans_the_cap() -> None:
    base = CanaryPolicy()
    wider = merge_policy(base, {"non_inferiority_margin": 0.03})
    assert wider.sample_cap < base.sample_cap


def test_harm_and_promotion_share_alpha_only_when_their_nulls_overlap() -> None:
    assert not CanaryPolicy().nulls_overlap  # tolerance 0 < margin 1 point
    assert CanaryPolicy().alpha_split(1).harm == CanaryPolicy().alpha_split(1).promotion == 0.05
    improving = CanaryPolicy(require_improvement=True)
    assert improving.nulls_overlap
    split = improving.alpha_split(1)
    assert split.harm + split.promotion == pytest.approx(0.05)


def test_a_zero_margin_needs_an_explicit_cap_and_tuning() -> None:
    with pytest.raises(ValidationError, match="plans no horizon"):
        CanaryPolicy(non_inferiority_margin=0.0)
    CanaryPolicy(non_inferiority_margin=0.0, max_samples_per_arm=1_000, sequence_tuning=2_000)


def test_the_primary_metric_holds_most_of_each_arms_harm_alpha() -> None:
    policy = CanaryPolicy()
    metrics = policy.harm_template[0]
    assert metrics[0] == "success_rate" and len(metrics) == 5
    assert policy.harm_weights == pytest.approx([0.9, 0.025, 0.025, 0.025, 0.025])
    alone = CanaryPolicy(guardrails=())
    assert alone.harm_weights == [1.0]
