"""Lint: each failure kind is caught, a good candidate passes."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from improver.lint import (
    DROPPED_VARIABLE,
    EMPTY,
    REJECTED_BEFORE,
    RENDER,
    SECURITY,
    SYNTAX,
    TOO_LONG,
    UNCHANGED,
    LintConfig,
    lint_candidate,
    normalised_hash,
)

PARENT = "Answer {{ question }} for {{ customer }}.\nBe concise."
GOOD = "Answer {{ question }} for {{ customer }}.\nBe concise.\n- Avoid: jargon (jargon)"
RECORDED = [{"question": "Where is my order?", "customer": "Ada"}]


def codes(issues: tuple) -> list[str]:
    return [issue.code for issue in issues]


def test_a_candidate_that_parses_renders_keeps_variables_and_differs_passes() -> None:
    assert lint_candidate(GOOD, parent_text=PARENT, recorded_variables=RECORDED) == ()


def test_lint_rejects_a_template_that_does_not_parse_and_names_the_line() -> None:
    issues = lint_candidate("Answer {{ question }}\n{% if customer %}", parent_text=PARENT)
    assert codes(issues) == [SYNTAX]
    assert "line 2" in issues[0].message


def test_lint_rejects_a_sandbox_escape() -> None:
    bad = GOOD + "{{ customer.__class__.__mro__ }}"
    assert codes(lint_candidate(bad, parent_text=PARENT)) == [SECURITY]


def test_lint_rejects_a_sandbox_escape_that_only_shows_with_recorded_data() -> None:
    bad = GOOD + "{{ customer[question] }}"
    recorded = [{"question": "__class__", "customer": "Ada"}]
    assert codes(lint_candidate(bad, parent_text=PARENT, recorded_variables=recorded)) == [SECURITY]


def test_lint_rejects_a_candidate_that_drops_a_variable_and_names_it() -> None:
    issues = lint_candidate("Answer {{ question }}. Be concise.", parent_text=PARENT)
    assert codes(issues) == [DROPPED_VARIABLE]
    assert "'customer'" in issues[0].message


def test_lint_rejects_a_variable_the_agents_do_not_send() -> None:
    issues = lint_candidate(
        GOOD + " Order: {{ order_id }}", parent_text=PARENT, recorded_variables=RECORDED
    )
    assert codes(issues) == [RENDER]
    assert "'order_id'" in issues[0].message


def test_lint_reports_one_render_fault_once_however_many_samples_show_it() -> None:
    issues = lint_candidate(
        GOOD + " {{ order_id }}", parent_text=PARENT, recorded_variables=RECORDED * 50
    )
    assert codes(issues) == [RENDER]


def test_lint_rejects_a_candidate_over_the_length_limit() -> None:
    long = GOOD + "\n" + "x" * 200
    issues = lint_candidate(long, parent_text=PARENT, config=LintConfig(max_chars=len(long) - 1))
    assert codes(issues) == [TOO_LONG]
    assert lint_candidate(long, parent_text=PARENT, config=LintConfig(max_chars=len(long))) == ()


def test_lint_rejects_a_candidate_identical_to_its_parent_up_to_whitespace() -> None:
    same = "Answer {{question}}   for {{ customer }}.\n\n  Be concise.  "
    assert codes(lint_candidate(same, parent_text=PARENT)) == [UNCHANGED]


def test_lint_rejects_a_candidate_rejected_before() -> None:
    rejected = {normalised_hash(GOOD.replace("\n", "\n\n"))}
    assert codes(lint_candidate(GOOD, parent_text=PARENT, rejected_hashes=rejected)) == [
        REJECTED_BEFORE
    ]


def test_lint_rejects_an_empty_template() -> None:
    assert EMPTY in codes(lint_candidate("  \n ", parent_text=PARENT))


def test_lint_rejects_text_that_is_not_a_string() -> None:
    assert codes(lint_candidate(None, parent_text=PARENT)) == [SYNTAX]  # type: ignore[arg-type]


def test_normalised_hash_ignores_tag_spacing_but_not_words_or_names() -> None:
    assert normalised_hash("Hi {{name}}!") == normalised_hash("Hi {{ name }}!")
    assert normalised_hash("Hi {{ name }}!") != normalised_hash("Hi {{ names }}!")
    assert normalised_hash("Be concise.") != normalised_hash("Be precise.")
    assert re.fullmatch(r"[0-9a-f]{64}", normalised_hash("x"))


_words = st.lists(st.text(alphabet="abcxyz.,!", min_size=1, max_size=6), min_size=1, max_size=8)
_gaps = st.text(alphabet=" \t\n", min_size=1, max_size=4)


@given(_words, st.data())
def test_normalised_hash_is_invariant_under_whitespace_changes(words: list[str], data) -> None:
    spaced = [data.draw(_gaps) for _ in words]
    one = " ".join(words)
    other = data.draw(_gaps) + "".join(w + g for w, g in zip(words, spaced, strict=True))
    assert normalised_hash(one) == normalised_hash(other)
