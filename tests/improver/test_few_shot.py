"""Few-shot: corrected outputs become worked examples, diverse and bounded."""

from __future__ import annotations

from improver.few_shot import few_shot
from improver.model import BaseVersion, Candidate, Skipped, StrategyConfig
from improver.prompt_text import EXAMPLES_HEADING
from improver.templates import render_template
from tests.improver.builders import (
    SUPPORT_TEMPLATE,
    SUPPORT_VARIABLES,
    example,
    pattern,
    tone_pattern,
)

BASE = BaseVersion("support/triage", 3, SUPPORT_TEMPLATE)
CONFIG = StrategyConfig()

REFUND_EXAMPLES = (
    example("Refund order 12, the mug broke", "Your refund for order 12 is $50."),
    example("Refund order 13, the mug broke", "Your refund for order 13 is $50."),
    example("Cancel my subscription and refund March", "March is refunded: $9.99."),
)


def section(template: str) -> str:
    text = render_template(template, SUPPORT_VARIABLES)
    return text.split(EXAMPLES_HEADING, 1)[1].split("\n\n", 1)[0]


def test_few_shot_adds_inputs_with_their_corrected_outputs_not_the_wrong_ones() -> None:
    result = few_shot(BASE, [pattern()], CONFIG)
    assert isinstance(result, Candidate)
    body = section(result.template)
    assert "Input: Refund order 12\nCorrect output: Your refund is $50." in body
    assert "$55" not in body  # the agent's wrong output is not taught
    assert result.addressed_pattern_ids == ("p1",)
    for line in SUPPORT_TEMPLATE.splitlines():
        assert line in result.template.splitlines()


def test_few_shot_covers_each_pattern_before_a_second_example_of_one() -> None:
    result = few_shot(
        BASE, [pattern(examples=REFUND_EXAMPLES), tone_pattern()], StrategyConfig(max_examples=2)
    )
    assert isinstance(result, Candidate)
    body = section(result.template)
    assert body.count("Input:") == 2
    assert "Third time asking" in body
    assert result.addressed_pattern_ids == ("p1", "p2")


def test_few_shot_prefers_a_dissimilar_example_over_a_near_duplicate() -> None:
    result = few_shot(BASE, [pattern(examples=REFUND_EXAMPLES)], StrategyConfig(max_examples=2))
    assert isinstance(result, Candidate)
    body = section(result.template)
    assert "order 12" in body and "subscription" in body
    assert "order 13" not in body


def test_few_shot_keeps_the_section_under_its_bound() -> None:
    bound = len(EXAMPLES_HEADING) + 120
    result = few_shot(
        BASE,
        [pattern(examples=REFUND_EXAMPLES)],
        StrategyConfig(max_examples=3, max_examples_section_chars=bound),
    )
    assert isinstance(result, Candidate)
    assert len(EXAMPLES_HEADING + "\n" + section(result.template)) <= bound
    assert 1 <= section(result.template).count("Input:") < 3


def test_few_shot_leaves_out_examples_too_long_to_quote_whole() -> None:
    long = example("Refund " + "please " * 200, "Refunded.")
    result = few_shot(BASE, [pattern(examples=(long, REFUND_EXAMPLES[0]))], CONFIG)
    assert isinstance(result, Candidate)
    assert "please please" not in result.template


def test_few_shot_skips_a_pattern_with_no_examples_with_a_reason() -> None:
    result = few_shot(BASE, [pattern(examples=())], CONFIG)
    assert isinstance(result, Skipped)
    assert "example" in result.reason


def test_few_shot_skips_examples_without_a_correction() -> None:
    result = few_shot(BASE, [pattern(examples=(example(corrected_output=None),))], CONFIG)
    assert isinstance(result, Skipped)


def test_few_shot_appends_new_examples_to_the_existing_section_only() -> None:
    first = few_shot(BASE, [pattern(examples=REFUND_EXAMPLES[:1])], CONFIG)
    assert isinstance(first, Candidate)
    second = few_shot(
        BaseVersion("support/triage", 4, first.template),
        [pattern(examples=REFUND_EXAMPLES)],
        StrategyConfig(max_examples=1),
    )
    assert isinstance(second, Candidate)
    assert second.template.count(EXAMPLES_HEADING) == 1
    assert second.template.count("Refund order 12, the mug broke") == 1
    assert section(second.template).count("Input:") == 2
    again = few_shot(
        BaseVersion("support/triage", 5, first.template),
        [pattern(examples=REFUND_EXAMPLES[:1])],
        CONFIG,
    )
    assert isinstance(again, Skipped)


def test_few_shot_quotes_template_syntax_in_examples_as_text() -> None:
    tricky = example("Show {{ config }} please", "I can't show {% raw %} that.")
    result = few_shot(BASE, [pattern(examples=(tricky,))], CONFIG)
    assert isinstance(result, Candidate)
    body = section(result.template)
    assert "Input: Show {{ config }} please\nCorrect output: I can't show {% raw %} that." in body


def test_few_shot_keeps_a_multi_paragraph_example_inside_its_section() -> None:
    multi = example("Line one\n\nLine two", "Answer one\n\n\nAnswer two")
    result = few_shot(BASE, [pattern(examples=(multi,))], CONFIG)
    assert isinstance(result, Candidate)
    assert "Input: Line one\nLine two\nCorrect output: Answer one\nAnswer two" in section(
        result.template
    )


def test_a_bare_ok_or_an_unchanged_output_never_becomes_a_worked_example() -> None:
    # The case: "Input: When is payday? Correct output: ok" reached production.
    examples = (example("When is payday?", "ok", "Payday is Friday."),
                example("When is payday?", "Payday is Friday", "Payday is Friday."),
                example("When is payday again?", "thx!", None))
    result = few_shot(BASE, [pattern(examples=examples)], CONFIG)
    assert isinstance(result, Skipped)
    assert "differs from the output" in result.reason
    mixed = few_shot(BASE, [pattern(examples=(*examples, example()))], CONFIG)
    assert isinstance(mixed, Candidate)
    assert "Correct output: ok" not in mixed.template
    assert "Correct output: Your refund is $50." in mixed.template


def test_noise_patterns_give_no_worked_examples() -> None:
    noise = pattern(noise="generic acknowledgements ('thx')", statements=())
    assert isinstance(few_shot(BASE, [noise], CONFIG), Skipped)
