"""Layouts: instruction-first, context-first and sandwich move whole chunks only."""

from __future__ import annotations

from improver.layouts import context_first, instruction_first, sandwich
from improver.model import BaseVersion, Candidate, Skipped, StrategyConfig
from improver.prompt_text import REMINDER_HEADING, RULES_HEADING
from improver.rules import additive
from improver.templates import parse_template, render_template
from tests.improver.builders import (
    REFUND_FEEDBACK,
    SUPPORT_TEMPLATE,
    SUPPORT_VARIABLES,
    TONE_FEEDBACK,
    pattern,
    tone_pattern,
)

CONFIG = StrategyConfig()
CONTEXT_FIRST_TEMPLATE = """Customer: {{ customer_name }}
Message: {{ message }}

You are a support agent for ACME.
Be concise.

Reply:
"""
VARS = {"customer_name": "Ada", "message": "Hi"}


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def test_instruction_first_moves_the_context_after_the_instructions_and_keeps_the_cue_last():
    result = instruction_first(BaseVersion("p", 1, CONTEXT_FIRST_TEMPLATE), [pattern()], CONFIG)
    assert isinstance(result, Candidate)
    assert paragraphs(result.template) == [
        "You are a support agent for ACME.\nBe concise.",
        "Customer: {{ customer_name }}\nMessage: {{ message }}",
        "Reply:",
    ]
    assert result.template.endswith("Reply:\n")
    assert result.addressed_pattern_ids == ()


def test_context_first_moves_the_context_before_the_instructions() -> None:
    result = context_first(BaseVersion("p", 1, SUPPORT_TEMPLATE), [pattern()], CONFIG)
    assert isinstance(result, Candidate)
    parts = paragraphs(result.template)
    assert parts[0].startswith("Customer: {{ customer_name }}")
    assert parts[1].startswith("You are a support agent")
    assert parts[-1] == "Reply:"
    assert sorted(parts) == sorted(paragraphs(SUPPORT_TEMPLATE))  # nothing added or lost


def test_a_layout_already_in_place_is_skipped() -> None:
    assert isinstance(instruction_first(BaseVersion("p", 1, SUPPORT_TEMPLATE), [], CONFIG), Skipped)
    assert isinstance(
        context_first(BaseVersion("p", 1, CONTEXT_FIRST_TEMPLATE), [], CONFIG), Skipped
    )


def test_layouts_skip_a_prompt_without_variables() -> None:
    base = BaseVersion("p", 1, "Be concise.\n\nBe kind.")
    for strategy in (instruction_first, context_first):
        result = strategy(base, [pattern()], CONFIG)
        assert isinstance(result, Skipped)
        assert "context" in result.reason


def test_layouts_never_cut_a_jinja_block_that_spans_paragraphs() -> None:
    template = (
        "{% if vip %}\nVIP customer: {{ customer_name }}\n\nOffer priority shipping.\n"
        "{% endif %}\n\nYou are a support agent.\n\nMessage: {{ message }}\n"
    )
    result = instruction_first(BaseVersion("p", 1, template), [], CONFIG)
    assert isinstance(result, Candidate)
    parse_template(result.template)
    text = render_template(result.template, {**VARS, "vip": True})
    assert text.index("You are a support agent") < text.index("VIP customer: Ada")
    assert text.index("VIP customer: Ada") < text.index("Offer priority shipping")


def test_sandwich_adds_the_critical_feedback_and_repeats_it_last_before_the_cue() -> None:
    result = sandwich(BaseVersion("p", 1, SUPPORT_TEMPLATE), [pattern(), tone_pattern()], CONFIG)
    assert isinstance(result, Candidate)
    text = render_template(result.template, SUPPORT_VARIABLES)
    assert text.count(REFUND_FEEDBACK) == 2
    assert text.index(RULES_HEADING) < text.index("Customer: Ada") < text.rindex(REFUND_FEEDBACK)
    assert text.rstrip().endswith(f"{REMINDER_HEADING}\n{REFUND_FEEDBACK}\n\nReply:")
    assert TONE_FEEDBACK not in text  # only the critical (top) pattern
    assert result.addressed_pattern_ids == ("p1",)


def test_sandwich_skips_when_the_critical_feedback_is_already_in_the_prompt() -> None:
    # Repeating a rule that is already there was a third of all candidate slots.
    first = sandwich(BaseVersion("p", 1, SUPPORT_TEMPLATE), [pattern()], CONFIG)
    assert isinstance(first, Candidate)
    again = sandwich(BaseVersion("p", 2, first.template), [pattern()], CONFIG)
    assert isinstance(again, Skipped) and "nothing new" in again.reason
    with_rule = additive(BaseVersion("p", 1, SUPPORT_TEMPLATE), [pattern()], CONFIG)
    assert isinstance(with_rule, Candidate)
    repeat = sandwich(BaseVersion("p", 2, with_rule.template), [pattern()], CONFIG)
    assert isinstance(repeat, Skipped) and "already in the prompt" in repeat.reason


def test_sandwich_replaces_a_stale_reminder_with_the_new_critical_feedback() -> None:
    first = sandwich(BaseVersion("p", 1, SUPPORT_TEMPLATE), [pattern()], CONFIG)
    assert isinstance(first, Candidate)
    second = sandwich(BaseVersion("p", 2, first.template), [tone_pattern()], CONFIG)
    assert isinstance(second, Candidate)
    assert second.template.count(REMINDER_HEADING) == 1
    tail = second.template.split(REMINDER_HEADING, 1)[1]
    assert TONE_FEEDBACK in tail and REFUND_FEEDBACK not in tail


def test_sandwich_never_repeats_noise_as_the_critical_rule() -> None:
    noise = pattern("n1", representative_reason="thx", statements=(), noise="generic")
    result = sandwich(BaseVersion("p", 1, SUPPORT_TEMPLATE), [noise, tone_pattern()], CONFIG)
    assert isinstance(result, Candidate)
    assert "thx" not in result.template and result.addressed_pattern_ids == ("p2",)


def test_sandwich_without_an_active_pattern_is_skipped() -> None:
    result = sandwich(BaseVersion("p", 1, SUPPORT_TEMPLATE), [pattern(status="resolved")], CONFIG)
    assert isinstance(result, Skipped)
