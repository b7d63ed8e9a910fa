"""Proposing candidates: priority, lint, de-duplication, k, and bad input."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.mining.model import PatternContext
from improver.candidates import (
    DEFAULT_PRIORITY,
    STRATEGIES,
    ImproverConfig,
    propose_candidates,
)
from improver.lint import LintConfig, lint_candidate, normalised_hash
from improver.model import BaseVersion, Candidate, Skipped, StrategyConfig
from improver.rules import additive
from improver.templates import render_template, template_variables
from tests.improver.builders import (
    SUPPORT_TEMPLATE,
    SUPPORT_VARIABLES,
    example,
    pattern,
    tone_pattern,
)

BASE = BaseVersion("support/triage", 3, SUPPORT_TEMPLATE)
BY_CATEGORY = PatternContext("category", ("complaint",), 0.95, 0.7, 1e-9, 12)
PATTERNS = [pattern(), tone_pattern(context=BY_CATEGORY)]


def test_the_strategy_table_has_every_strategy_the_service_can_name() -> None:
    assert set(STRATEGIES) == {
        "additive",
        "few_shot",
        "replacement",
        "instruction_first",
        "context_first",
        "sandwich",
        "contextual",
    }
    assert set(DEFAULT_PRIORITY) == set(STRATEGIES)


def test_propose_returns_k_linted_candidates_from_distinct_strategies_in_priority_order():
    candidates, skipped = propose_candidates(
        BASE, PATTERNS, k=3, recorded_variables=[SUPPORT_VARIABLES]
    )
    assert [c.strategy for c in candidates] == ["additive", "few_shot", "contextual"]
    assert len({normalised_hash(c.template) for c in candidates}) == 3
    for c in candidates:
        assert (
            lint_candidate(
                c.template, parent_text=BASE.template, recorded_variables=[SUPPORT_VARIABLES]
            )
            == ()
        )
        assert c.parent_version == 3
    assert skipped == ()  # k was reached before any strategy had to give up


def test_propose_runs_the_requested_strategies_in_the_requested_order() -> None:
    candidates, _ = propose_candidates(BASE, PATTERNS, k=2, strategies=["sandwich", "additive"])
    assert [c.strategy for c in candidates] == ["sandwich", "additive"]


def test_propose_reports_an_unknown_strategy() -> None:
    candidates, skipped = propose_candidates(BASE, PATTERNS, strategies=["additive", "magic"])
    assert [c.strategy for c in candidates] == ["additive"]
    assert Skipped("magic", "unknown strategy") in skipped


def test_propose_drops_a_candidate_with_the_same_text_as_an_earlier_one() -> None:
    earlier = additive(BASE, PATTERNS, StrategyConfig())
    assert isinstance(earlier, Candidate)
    spaced = Candidate(earlier.template.replace("\n", "\n\n", 1), "llm_rewriter", "r", (), 3)
    candidates, skipped = propose_candidates(
        BASE, PATTERNS, k=3, strategies=["additive"], extra=[spaced]
    )
    assert [c.strategy for c in candidates] == ["llm_rewriter"]
    assert skipped == (Skipped("additive", "same text as the llm_rewriter candidate"),)


def test_propose_never_returns_a_candidate_rejected_before() -> None:
    earlier = additive(BASE, PATTERNS, StrategyConfig())
    assert isinstance(earlier, Candidate)
    candidates, skipped = propose_candidates(
        BASE, PATTERNS, k=3, rejected_hashes={normalised_hash(earlier.template)}
    )
    assert "additive" not in [c.strategy for c in candidates]
    assert any(s.strategy == "additive" and "rejected before" in s.reason for s in skipped)
    assert len(candidates) == 3


def test_propose_lints_extra_candidates_and_reports_why_they_fail() -> None:
    dropped = Candidate("Be kind. {{ message }}", "llm_rewriter", "r", ("p1",), 3)
    candidates, skipped = propose_candidates(BASE, PATTERNS, k=1, extra=[dropped])
    assert [c.strategy for c in candidates] == ["additive"]
    reason = next(s.reason for s in skipped if s.strategy == "llm_rewriter")
    assert reason.startswith("lint:") and "'customer_name'" in reason


def test_a_pattern_without_examples_skips_few_shot_but_the_others_still_run() -> None:
    candidates, skipped = propose_candidates(BASE, [pattern(examples=(), context=BY_CATEGORY)],
                                             k=7)
    assert "few_shot" not in [c.strategy for c in candidates]
    assert {"additive", "contextual", "replacement", "sandwich"} <= {c.strategy for c in candidates}
    assert any(s.strategy == "few_shot" and "example" in s.reason for s in skipped)


def test_a_prompt_without_variables_gets_rules_and_conditions_but_no_layout() -> None:
    # The agents send 'category' even though this template does not use it, so guidance may
    # still depend on it; only a layout needs a context block to move.
    base = BaseVersion("faq", 1, "You answer questions about ACME.\nBe concise.")
    candidates, skipped = propose_candidates(base, PATTERNS, k=7,
                                             recorded_variables=[{"category": "complaint"}, {}])
    strategies = {c.strategy for c in candidates}
    assert {"additive", "few_shot", "sandwich", "contextual"} <= strategies
    reasons = {s.strategy: s.reason for s in skipped}
    assert "instruction_first" in reasons and "context_first" in reasons
    without = propose_candidates(base, [pattern()], k=7)[1]
    assert any(s.strategy == "contextual" and "recorded input variable" in s.reason
               for s in without)


def test_a_50kb_prompt_gives_no_candidate_and_says_why() -> None:
    base = BaseVersion("big", 1, "Be concise. {{ message }}\n" + "Lorem ipsum dolor. " * 2_700)
    assert len(base.template) > 50_000
    candidates, skipped = propose_candidates(base, PATTERNS)
    assert candidates == ()
    assert {s.strategy for s in skipped} == set(DEFAULT_PRIORITY)
    assert all("over the 20,000-char limit" in s.reason for s in skipped)


def test_a_candidate_pushed_over_the_limit_is_skipped_with_the_lint_reason() -> None:
    config = ImproverConfig(lint=LintConfig(max_chars=len(SUPPORT_TEMPLATE) + 40))
    candidates, skipped = propose_candidates(BASE, PATTERNS, strategies=["additive"], config=config)
    assert candidates == ()
    assert "chars, over the" in skipped[0].reason


def test_a_current_version_that_does_not_parse_gives_reasons_not_exceptions() -> None:
    base = BaseVersion("broken", 1, "Hello {% if x %}")
    candidates, skipped = propose_candidates(base, PATTERNS)
    assert candidates == ()
    assert all("does not parse" in s.reason for s in skipped)


def test_no_patterns_means_no_candidates() -> None:
    candidates, skipped = propose_candidates(BASE, [])
    assert candidates == ()
    assert {s.reason for s in skipped} == {"no patterns to address"}


def test_k_zero_runs_nothing() -> None:
    assert propose_candidates(BASE, PATTERNS, k=0) == ((), ())


_text = st.text(min_size=0, max_size=60).filter(lambda s: "\r" not in s)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reason=_text, label=_text, category=_text, input_text=_text, corrected=_text)
def test_no_pattern_text_can_break_the_template_or_its_variables(
    reason: str, label: str, category: str, input_text: str, corrected: str
) -> None:
    # Pattern text comes from users; whatever it holds, every candidate must parse, keep
    # every variable, render with the agents' variables, and show that text verbatim.
    hostile = pattern(
        representative_reason=reason + " {{ customer_name.__class__ }}",
        label=label,
        categories=(category,) if category.strip() else (),
        examples=(example(input_text + "{% endif %}", corrected + "{{ x }}"),),
    )
    candidates, _ = propose_candidates(BASE, [hostile], k=7)
    assert "additive" in {c.strategy for c in candidates}
    for candidate in candidates:
        assert template_variables(candidate.template) == template_variables(BASE.template)
        text = render_template(candidate.template, SUPPORT_VARIABLES)
        if candidate.strategy == "additive":
            assert "- " + " ".join(hostile.representative_reason.split()) in text


def test_a_candidate_equal_to_the_base_after_normalisation_is_skipped_as_nothing_new() -> None:
    same = Candidate(BASE.template.replace("\n", "  \n"), "llm_rewriter", "x", ("p1",), 3)
    candidates, skipped = propose_candidates(BASE, PATTERNS, k=1, extra=[same])
    assert [c.strategy for c in candidates] == ["additive"]
    assert Skipped("llm_rewriter", "nothing new: the candidate equals the current version "
                                   "after normalisation") in skipped
