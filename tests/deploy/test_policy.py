"""Canary policy: validated steps, defaults, per-prompt overrides."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

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


def test_sequence_tuning_is_passed_through_or_left_to_analytics() -> None:
    assert CanaryPolicy().n_star is None
    assert CanaryPolicy(sequence_tuning=300).n_star == 300
