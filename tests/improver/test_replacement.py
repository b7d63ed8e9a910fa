"""Replacement: the instruction implicated by a complaint is replaced by feedback or removed."""

from __future__ import annotations

from improver.feedback import FEEDBACK_INTRO
from improver.model import BaseVersion, Candidate, Skipped, StrategyConfig
from improver.prompt_text import RULES_HEADING
from improver.replacement import replacement
from improver.rules import additive
from improver.templates import template_variables
from tests.improver.builders import (
    REFUND_FEEDBACK,
    SUPPORT_TEMPLATE,
    TONE_FEEDBACK,
    pattern,
    tone_pattern,
)

BASE = BaseVersion("support/triage", 3, SUPPORT_TEMPLATE)
CONFIG = StrategyConfig()
CULPRIT = "- Always include shipping costs in the refund amount."


def test_replacement_swaps_the_implicated_instruction_for_the_reviewers_feedback() -> None:
    result = replacement(BASE, [pattern()], CONFIG)
    assert isinstance(result, Candidate)
    lines = result.template.splitlines()
    assert CULPRIT not in lines
    assert lines[1] == "- Be concise."  # the innocent instruction stays, in place
    section = result.template.split(RULES_HEADING, 1)[1]
    assert section.startswith(f"\n{FEEDBACK_INTRO}\n{REFUND_FEEDBACK}")
    assert "Avoid" not in result.template
    assert "shipping" in result.rationale and CULPRIT.strip() in result.rationale
    assert result.addressed_pattern_ids == ("p1",)


def test_replacement_in_remove_mode_drops_the_instruction() -> None:
    result = replacement(BASE, [pattern()], StrategyConfig(replacement_mode="remove"))
    assert isinstance(result, Candidate)
    assert result.template == SUPPORT_TEMPLATE.replace(CULPRIT + "\n", "")
    assert result.rationale.startswith("Removed")


def test_replacement_never_touches_a_line_that_carries_a_variable() -> None:
    template = "Refund shipping costs for {{ order_id }} always.\nBe concise."
    result = replacement(BaseVersion("p", 1, template), [pattern()], CONFIG)
    assert isinstance(result, Skipped)


def test_replacement_needs_the_configured_number_of_shared_words() -> None:
    template = "Mention the refund policy.\nBe concise."
    one_word = replacement(BaseVersion("p", 1, template), [pattern()], CONFIG)
    assert isinstance(one_word, Skipped)
    assert "2+" in one_word.reason
    loose = replacement(
        BaseVersion("p", 1, template), [pattern()], StrategyConfig(min_shared_terms=1)
    )
    assert isinstance(loose, Candidate)


def test_replacement_skips_when_no_instruction_is_implicated() -> None:
    result = replacement(BASE, [tone_pattern()], CONFIG)
    assert isinstance(result, Skipped)


def test_replacement_leaves_the_learned_rules_alone() -> None:
    with_rule = additive(BaseVersion("p", 1, "Be concise.\n\nAsk {{ q }}"), [pattern()], CONFIG)
    assert isinstance(with_rule, Candidate)
    result = replacement(BaseVersion("p", 2, with_rule.template), [pattern()], CONFIG)
    assert isinstance(result, Skipped)


def test_replacement_handles_each_pattern_on_its_own_instruction() -> None:
    template = (
        "Always include shipping costs in the refund amount.\n"
        "Be blunt and rude to an upset customer who repeats a question.\n\n"
        "Message: {{ message }}"
    )
    result = replacement(BaseVersion("p", 1, template), [pattern(), tone_pattern()], CONFIG)
    assert isinstance(result, Candidate)
    assert result.addressed_pattern_ids == ("p1", "p2")
    assert "Always include shipping" not in result.template
    assert "Be blunt and rude" not in result.template
    assert f"{FEEDBACK_INTRO}\n{REFUND_FEEDBACK}\n{TONE_FEEDBACK}" in result.template
    assert template_variables(result.template) == frozenset({"message"})
