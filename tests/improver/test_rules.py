"""Additive and contextual strategies: rules phrased from the patterns, where they belong."""

from __future__ import annotations

import re

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from improver.model import BaseVersion, Candidate, Skipped, StrategyConfig
from improver.prompt_text import RULES_HEADING
from improver.rules import additive, contextual
from improver.templates import render_template, template_variables
from tests.improver.builders import SUPPORT_TEMPLATE, SUPPORT_VARIABLES, pattern, tone_pattern

BASE = BaseVersion("support/triage", 3, SUPPORT_TEMPLATE)
CONFIG = StrategyConfig()


def rendered(template: str, **overrides: str) -> str:
    return render_template(template, {**SUPPORT_VARIABLES, **overrides})


def test_additive_adds_a_rule_quoting_reason_and_label_under_the_stable_heading() -> None:
    result = additive(BASE, [pattern(), tone_pattern()], CONFIG)
    assert isinstance(result, Candidate)
    text = rendered(result.template)
    assert RULES_HEADING in text
    assert "- Avoid: Refund amount included the shipping costs (refund shipping)" in text
    assert "- Avoid: The reply was rude to an upset customer (tone rude)" in text
    assert result.addressed_pattern_ids == ("p1", "p2")
    assert result.parent_version == 3
    assert "p1" in result.rationale and "p2" in result.rationale


def test_additive_keeps_every_original_line_and_puts_rules_before_the_context() -> None:
    result = additive(BASE, [pattern()], CONFIG)
    assert isinstance(result, Candidate)
    lines = result.template.splitlines()
    for line in SUPPORT_TEMPLATE.splitlines():
        assert line in lines
    assert lines.index(RULES_HEADING) < lines.index("Customer: {{ customer_name }}")
    assert lines.index(RULES_HEADING) > lines.index("- Be concise.")


def test_additive_appends_to_an_existing_rules_section_instead_of_adding_another() -> None:
    first = additive(BASE, [pattern()], CONFIG)
    assert isinstance(first, Candidate)
    second = additive(BaseVersion("support/triage", 4, first.template), [tone_pattern()], CONFIG)
    assert isinstance(second, Candidate)
    assert second.template.count(RULES_HEADING) == 1
    section = second.template.split(RULES_HEADING, 1)[1].split("\n\n", 1)[0]
    assert "(refund shipping)" in section and "(tone rude)" in section
    assert second.addressed_pattern_ids == ("p2",)


def test_additive_skips_when_every_top_rule_is_already_present() -> None:
    first = additive(BASE, [pattern()], CONFIG)
    assert isinstance(first, Candidate)
    again = additive(BaseVersion("support/triage", 4, first.template), [pattern()], CONFIG)
    assert isinstance(again, Skipped)
    assert "already" in again.reason


def test_additive_ignores_resolved_patterns_and_stops_at_max_patterns() -> None:
    patterns = [pattern("gone", status="resolved")] + [
        pattern(f"p{i}", label=f"label {i}", representative_reason=f"reason {i}") for i in range(5)
    ]
    result = additive(BASE, patterns, StrategyConfig(max_patterns=2))
    assert isinstance(result, Candidate)
    assert result.addressed_pattern_ids == ("p0", "p1")
    assert "gone" not in result.template


def test_additive_shortens_a_long_reason_at_a_word_boundary() -> None:
    long_reason = "the refund " * 100
    result = additive(BASE, [pattern(representative_reason=long_reason)], CONFIG)
    assert isinstance(result, Candidate)
    rule = next(line for line in result.template.splitlines() if line.startswith("- Avoid"))
    assert len(rule) < CONFIG.max_reason_chars + 40
    assert "refund…" in rule and rule.endswith("(refund shipping)")


def test_additive_skips_patterns_with_neither_reason_nor_label() -> None:
    result = additive(BASE, [pattern(representative_reason=" ", label="")], CONFIG)
    assert isinstance(result, Skipped)


def test_additive_shows_template_syntax_in_a_reason_as_text_without_running_it() -> None:
    reason = "Leaked {{ ''.__class__.__mro__ }} and {% for x in y %} into the reply"
    result = additive(BASE, [pattern(representative_reason=reason)], CONFIG)
    assert isinstance(result, Candidate)
    assert template_variables(result.template) == template_variables(SUPPORT_TEMPLATE)
    assert f"- Avoid: {reason} (refund shipping)" in rendered(result.template)


def test_contextual_guidance_renders_only_for_the_category_the_pattern_occurs_in() -> None:
    result = contextual(BASE, [pattern(), tone_pattern()], CONFIG)
    assert isinstance(result, Candidate)
    billing = rendered(result.template, category="billing")
    complaint = rendered(result.template, category="complaint")
    other = rendered(result.template, category="shipping")
    assert "(refund shipping)" in billing and "(tone rude)" not in billing
    assert "(tone rude)" in complaint and "(refund shipping)" not in complaint
    assert "Avoid" not in other
    assert result.addressed_pattern_ids == ("p1", "p2")


def test_contextual_rules_render_as_plain_bullets_without_stray_blank_lines() -> None:
    result = contextual(BASE, [pattern(), tone_pattern()], CONFIG)
    assert isinstance(result, Candidate)
    section = rendered(result.template, category="billing").split(RULES_HEADING, 1)[1]
    assert section.startswith(
        "\n- Avoid: Refund amount included the shipping costs (refund shipping)\n\nCustomer:"
    )


def test_contextual_covers_every_category_of_a_pattern() -> None:
    p = pattern(categories=("billing", "returns"))
    result = contextual(BASE, [p], CONFIG)
    assert isinstance(result, Candidate)
    assert "(refund shipping)" in rendered(result.template, category="returns")


def test_contextual_skips_a_prompt_without_an_input_category_variable() -> None:
    for template in ("Be concise.", "Answer {{ question }}."):
        result = contextual(BaseVersion("p", 1, template), [pattern()], CONFIG)
        assert isinstance(result, Skipped)
        assert "'category'" in result.reason


def test_contextual_uses_the_configured_category_variable() -> None:
    base = BaseVersion("p", 1, "Intent: {{ intent }}\nAnswer {{ question }}.")
    result = contextual(base, [pattern()], CONFIG)
    assert isinstance(result, Candidate)
    assert "(refund shipping)" in render_template(
        result.template, {"intent": "billing", "question": "q"}
    )


def test_contextual_skips_patterns_that_have_no_category() -> None:
    result = contextual(BASE, [pattern(categories=())], CONFIG)
    assert isinstance(result, Skipped)


@settings(max_examples=60, deadline=None)
@example('say "hi"')
@example("%} {{ x }} {% endif %}")
@example("back\\slash")
@example("line\nbreak")
@example("\U00010000")
@given(st.text(min_size=1, max_size=30).filter(lambda s: s.strip() and "\r" not in s))
def test_contextual_category_literal_matches_exactly_that_category(category: str) -> None:
    # (A category like "__init__" is refused by lint's sandbox check, by design.)
    assume(not re.search(r"__\w+__|_[A-Za-z]\w*__", category))
    result = contextual(BASE, [pattern(categories=(category,))], CONFIG)
    assert isinstance(result, Candidate)
    assert "(refund shipping)" in rendered(result.template, category=category)
    assert "(refund shipping)" not in rendered(result.template, category=category + "x")
