"""Additive and contextual strategies: reviewer feedback for the patterns, where it belongs."""

from __future__ import annotations

import re

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from analytics.mining.model import PatternContext
from improver.feedback import FEEDBACK_INTRO
from improver.model import BaseVersion, Candidate, Skipped, StrategyConfig
from improver.prompt_text import RULES_HEADING
from improver.rules import additive, contextual
from improver.templates import render_template, template_variables
from tests.improver.builders import (
    REFUND_FEEDBACK,
    SUPPORT_TEMPLATE,
    SUPPORT_VARIABLES,
    TONE_FEEDBACK,
    pattern,
    tone_pattern,
)

BASE = BaseVersion("support/triage", 3, SUPPORT_TEMPLATE)
CONFIG = StrategyConfig()
BARE = StrategyConfig(feedback_examples=False)


def rendered(template: str, **overrides: str) -> str:
    return render_template(template, {**SUPPORT_VARIABLES, **overrides})


def locale_pattern(pattern_id: str = "p3", **overrides: object) -> object:
    context = PatternContext(variable="locale", values=("de", "es"), coverage=0.97,
                             association=0.8, p_value=1e-12, support=40)
    values: dict[str, object] = {
        "label": "language english", "representative_reason": "Answered in English to a "
        "customer who wrote in German", "context": context, "categories": ("language",),
    }
    values.update(overrides)
    return pattern(pattern_id, **values)


def test_additive_presents_each_statement_as_reviewer_feedback_under_the_heading() -> None:
    result = additive(BASE, [pattern(), tone_pattern()], BARE)
    assert isinstance(result, Candidate)
    text = rendered(result.template)
    assert f"{RULES_HEADING}\n{FEEDBACK_INTRO}\n{REFUND_FEEDBACK}\n{TONE_FEEDBACK}\n" in text
    assert "Avoid" not in text and "(refund shipping)" not in text  # no verb, no label
    assert result.addressed_pattern_ids == ("p1", "p2")
    assert result.parent_version == 3
    assert "p1" in result.rationale and "p2" in result.rationale


def test_additive_keeps_the_reviewers_request_as_a_request_not_as_its_opposite() -> None:
    # The case from the issue: "Avoid: please give the date in ISO format".
    request = pattern(representative_reason="Please give the date in ISO format.")
    text = rendered(additive(BASE, [request], BARE).template)  # type: ignore[union-attr]
    assert "- Please give the date in ISO format." in text
    assert not re.search(r"Avoid:? (please|use)\b", text, re.IGNORECASE)


def test_a_terse_statement_gets_one_short_corrected_example_a_full_one_does_not() -> None:
    terse = additive(BASE, [pattern(representative_reason="Wrong refund amount.")], CONFIG)
    assert isinstance(terse, Candidate)
    assert ('- Wrong refund amount. Example: "Refund order 12" → "Your refund is $50."'
            in rendered(terse.template))
    full = additive(BASE, [pattern()], CONFIG)  # six words already say what went wrong
    assert isinstance(full, Candidate)
    assert f"{REFUND_FEEDBACK}\n" in rendered(full.template)
    assert "Example:" not in full.template


def test_additive_never_shows_a_bare_ok_or_an_unchanged_output_as_a_corrected_example() -> None:
    from tests.improver.builders import example

    for fix in ("ok", "Your refund is $55 including shipping."):
        p = pattern(examples=(example(corrected_output=fix),),
                    representative_reason="Wrong refund amount.")
        text = rendered(additive(BASE, [p], CONFIG).template)  # type: ignore[union-attr]
        assert "Example" not in text


def test_additive_prefers_the_statement_in_the_prompts_language() -> None:
    p = pattern(statements=(("de", "Der Betrag enthielt die Versandkosten."),
                            ("en", "The refund included the shipping costs.")), language="de")
    text = rendered(additive(BASE, [p], BARE).template)  # type: ignore[union-attr]
    assert "- The refund included the shipping costs." in text
    assert "Versandkosten" not in text


def test_additive_gives_no_rule_for_noise_or_uncommented_failures() -> None:
    noise = pattern("n1", representative_reason="thx", statements=(),
                    noise="generic acknowledgements ('thx'): 0/30 reasons name a problem")
    failures = pattern("f1", representative_reason="unsuccessful execution", corrections=0,
                       categories=(), statements=(("en", "Unsuccessful execution."),))
    result = additive(BASE, [noise, failures, tone_pattern()], BARE)
    assert isinstance(result, Candidate)
    assert result.addressed_pattern_ids == ("p2",)
    text = rendered(result.template).lower()
    assert "thx" not in text and "unsuccessful execution" not in text
    only_silent = additive(BASE, [noise, failures], BARE)
    assert isinstance(only_silent, Skipped)
    assert "n1 is noise" in only_silent.reason
    assert "f1 has no reviewer feedback" in only_silent.reason


def test_additive_keeps_every_original_line_and_puts_feedback_before_the_context() -> None:
    result = additive(BASE, [pattern()], CONFIG)
    assert isinstance(result, Candidate)
    lines = result.template.splitlines()
    for line in SUPPORT_TEMPLATE.splitlines():
        assert line in lines
    assert lines.index(RULES_HEADING) < lines.index("Customer: {{ customer_name }}")
    assert lines.index(RULES_HEADING) > lines.index("- Be concise.")


def test_additive_appends_to_an_existing_feedback_section_instead_of_adding_another() -> None:
    first = additive(BASE, [pattern()], BARE)
    assert isinstance(first, Candidate)
    second = additive(BaseVersion("support/triage", 4, first.template), [tone_pattern()], BARE)
    assert isinstance(second, Candidate)
    assert second.template.count(RULES_HEADING) == 1
    assert second.template.count(FEEDBACK_INTRO) == 1
    section = second.template.split(RULES_HEADING, 1)[1].split("\n\n", 1)[0]
    assert REFUND_FEEDBACK in section and TONE_FEEDBACK in section
    assert second.addressed_pattern_ids == ("p2",)


def test_additive_skips_when_every_top_feedback_is_already_present() -> None:
    first = additive(BASE, [pattern()], CONFIG)
    assert isinstance(first, Candidate)
    for config in (CONFIG, BARE):
        again = additive(BaseVersion("support/triage", 4, first.template), [pattern()], config)
        assert isinstance(again, Skipped)
        assert "nothing new" in again.reason


def test_additive_ignores_resolved_patterns_and_stops_at_max_patterns() -> None:
    patterns = [pattern("gone", status="resolved")] + [
        pattern(f"p{i}", label=f"label {i}", representative_reason=f"reason number {i} here")
        for i in range(5)
    ]
    result = additive(BASE, patterns, StrategyConfig(max_patterns=2))
    assert isinstance(result, Candidate)
    assert result.addressed_pattern_ids == ("p0", "p1")
    assert "gone" not in result.template


def test_additive_shortens_a_long_statement_at_a_word_boundary() -> None:
    long_reason = "the refund " * 100
    result = additive(BASE, [pattern(representative_reason=long_reason)], BARE)
    assert isinstance(result, Candidate)
    rule = next(line for line in result.template.splitlines() if line.startswith("- the"))
    assert len(rule) < CONFIG.max_reason_chars + 10
    assert rule.endswith("refund…")


def test_additive_shows_template_syntax_in_a_reason_as_text_without_running_it() -> None:
    reason = "Leaked {{ ''.__class__.__mro__ }} and {% for x in y %} into the reply."
    result = additive(BASE, [pattern(representative_reason=reason)], BARE)
    assert isinstance(result, Candidate)
    assert template_variables(result.template) == template_variables(SUPPORT_TEMPLATE)
    assert f"- {reason}" in rendered(result.template)


def test_contextual_conditions_on_the_recorded_variable_mining_found_even_if_unused() -> None:
    # locale is not in the template; the agents send it, so the guidance may depend on it.
    result = contextual(BASE, [locale_pattern()], CONFIG)
    assert isinstance(result, Candidate)
    line = "- Answered in English to a customer who wrote in German."
    assert line in rendered(result.template, locale="de")
    assert line in rendered(result.template, locale="es")
    assert line not in rendered(result.template, locale="en")
    assert line not in rendered(result.template)  # an agent that does not send it
    assert "'locale'" in result.rationale and "0.80" in result.rationale
    assert result.addressed_pattern_ids == ("p3",)


def test_contextual_renders_as_plain_bullets_without_stray_blank_lines() -> None:
    result = contextual(BASE, [locale_pattern()], CONFIG)
    assert isinstance(result, Candidate)
    section = rendered(result.template, locale="de").split(RULES_HEADING, 1)[1]
    assert section.startswith(
        f"\n{FEEDBACK_INTRO}\n- Answered in English to a customer who wrote in German."
        "\n\nCustomer:"
    )


def test_contextual_skips_when_no_recorded_variable_separates_a_pattern() -> None:
    # A 'category' input and reviewers' categories are not evidence that the two coincide.
    for template in ("Be concise.", "Answer {{ question }}.", SUPPORT_TEMPLATE):
        result = contextual(BaseVersion("p", 1, template), [pattern()], CONFIG)
        assert isinstance(result, Skipped)
        assert "recorded input variable" in result.reason


def test_contextual_gives_each_pattern_its_own_condition() -> None:
    by_category = PatternContext("category", ("billing", "returns"), 0.9, 0.6, 1e-9, 30)
    result = contextual(BASE, [pattern(context=by_category), locale_pattern()], CONFIG)
    assert isinstance(result, Candidate)
    german_returns = rendered(result.template, category="returns", locale="de")
    english_billing = rendered(result.template, category="billing", locale="en")
    assert REFUND_FEEDBACK in german_returns and "Answered in English" in german_returns
    assert REFUND_FEEDBACK in english_billing and "Answered in English" not in english_billing
    assert result.addressed_pattern_ids == ("p1", "p3")


@settings(max_examples=60, deadline=None)
@example('say "hi"')
@example("%} {{ x }} {% endif %}")
@example("back\\slash")
@example("line\nbreak")
@example("\U00010000")
@given(st.text(min_size=1, max_size=30).filter(lambda s: s.strip() and "\r" not in s))
def test_contextual_value_literal_matches_exactly_that_value(value: str) -> None:
    # (A value like "__init__" is refused by lint's sandbox check, by design.)
    assume(not re.search(r"__\w+__|_[A-Za-z]\w*__", value))
    context = PatternContext("locale", (value,), 1.0, 0.9, 1e-9, 30)
    result = contextual(BASE, [pattern(context=context)], CONFIG)
    assert isinstance(result, Candidate)
    assert REFUND_FEEDBACK in rendered(result.template, locale=value)
    assert REFUND_FEEDBACK not in rendered(result.template, locale=value + "x")
