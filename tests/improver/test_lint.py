"""Lint: each failure kind is caught, a good candidate passes."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from improver.lint import (
    BUDGET,
    DROPPED_VARIABLE,
    EMPTY,
    REJECTED_BEFORE,
    RENDER,
    SECURITY,
    SYNTAX,
    TOO_LONG,
    UNCHANGED,
    LintConfig,
    budget_issues,
    lint_candidate,
    normalised_hash,
)
from improver.render_budget import RenderBudget

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


EMPTY_LOOP_BOMB = (
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
)


def test_lint_rejects_a_candidate_over_the_render_budget_with_recorded_variables() -> None:
    issues = lint_candidate(GOOD + EMPTY_LOOP_BOMB, parent_text=PARENT, recorded_variables=RECORDED)
    assert codes(issues) == [BUDGET]
    assert "max_steps=" in issues[0].message and "#0" in issues[0].message


def test_lint_renders_sample_variables_when_no_execution_was_recorded() -> None:
    # The bomb only runs over a variable, so no static check can see it.
    bomb = GOOD + "{% for q in question %}" + EMPTY_LOOP_BOMB + "{% endfor %}"
    issues = lint_candidate(bomb, parent_text=PARENT)
    assert codes(issues) == [BUDGET]
    assert "sample variables" in issues[0].message


def test_lint_judges_only_the_budget_on_sample_variables() -> None:
    # Samples are not real data: comparing one with a number fails, and says nothing.
    shaped = GOOD + "{% if customer.orders|length > 2 and customer.total > 100 %}vip{% endif %}"
    assert lint_candidate(shaped, parent_text=PARENT) == ()


def test_sample_variables_are_finite_so_lint_sees_past_a_recursive_loop() -> None:
    tree = GOOD + "{% for node in question recursive %}{{ node.title }}{{ loop(node.children) }}"
    tree += "{% endfor %}"
    assert lint_candidate(tree, parent_text=PARENT) == ()
    # Endless samples would end this render in RecursionError before it reached the bomb.
    assert codes(lint_candidate(tree + EMPTY_LOOP_BOMB, parent_text=PARENT)) == [BUDGET]


def test_lint_judges_the_budget_the_daemon_will_render_under() -> None:
    loop = GOOD + "{% for i in range(300) %}{{ customer }}{% endfor %}"
    assert lint_candidate(loop, parent_text=PARENT, recorded_variables=RECORDED) == ()
    tight = LintConfig(render_budget=RenderBudget(max_steps=500))
    issues = lint_candidate(loop, parent_text=PARENT, recorded_variables=RECORDED, config=tight)
    assert codes(issues) == [BUDGET]


def test_budget_issues_refuse_a_new_version_that_would_exceed_the_budget() -> None:
    assert budget_issues(GOOD, RECORDED) == ()
    assert budget_issues(GOOD) == ()
    assert [i.code for i in budget_issues(GOOD + EMPTY_LOOP_BOMB, RECORDED)] == [BUDGET]
    assert [i.code for i in budget_issues(GOOD + EMPTY_LOOP_BOMB)] == [BUDGET]


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
