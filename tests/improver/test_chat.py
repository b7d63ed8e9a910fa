"""Chat prompts in the improver: every strategy edits messages where it means the same; lint
covers every message; a candidate changes the model config only when allowed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from analytics.mining.model import PatternContext
from improver import BaseVersion, Candidate, ImproverConfig, Skipped, propose_candidates
from improver.chat import Message, chat_source, keeps_structure
from improver.chat_strategies import CHAT_STRATEGIES
from improver.few_shot import FEW_SHOT
from improver.layouts import CONTEXT_FIRST, INSTRUCTION_FIRST, SANDWICH
from improver.lint import LintConfig, lint_chat_candidate
from improver.model import StrategyConfig
from improver.replacement import REPLACEMENT
from improver.rules import ADDITIVE, CONTEXTUAL
from tests.improver.builders import example, pattern, tone_pattern

SYSTEM = Message("system", "You are a support agent for ACME.\n"
                           "- Always include shipping costs in the refund amount.\n"
                           "- Be concise.")
HISTORY = Message("placeholder", name="history")
USER = Message("user", "Customer: {{ customer_name }}\n\nQuestion: {{ question }}")
CHAT = BaseVersion("support/chat", 3, "", (SYSTEM, HISTORY, USER), {"model": "m1"})
CONFIG = StrategyConfig()


def _roles(messages: tuple[Message, ...] | None) -> list[str]:
    assert messages is not None
    return [m.role for m in messages]


@pytest.mark.parametrize("name", [ADDITIVE, REPLACEMENT])
def test_rules_go_into_the_system_message_and_nothing_else_changes(name: str) -> None:
    result = CHAT_STRATEGIES[name](CHAT, [pattern()], CONFIG)
    assert isinstance(result, Candidate), result
    assert result.messages is not None and result.template == ""
    system, history, user = result.messages
    assert "Reviewers flagged" in system.content and "shipping" in system.content
    assert (history, user) == (HISTORY, USER)
    assert "system message" in result.rationale


def test_a_rule_creates_a_system_message_when_the_prompt_has_none() -> None:
    base = replace(CHAT, messages=(HISTORY, USER))
    result = CHAT_STRATEGIES[ADDITIVE](base, [pattern()], CONFIG)
    assert isinstance(result, Candidate)
    assert _roles(result.messages) == ["system", "placeholder", "user"]
    assert result.messages is not None and result.messages[0].content.startswith("## Reviewer")


def test_contextual_feedback_is_a_condition_in_the_system_message() -> None:
    context = PatternContext("locale", ("de",), 0.9, 0.6, 1e-6, 30)
    result = CHAT_STRATEGIES[CONTEXTUAL](CHAT, [pattern(context=context)], CONFIG)
    assert isinstance(result, Candidate) and result.messages is not None
    assert '{%- if locale is defined and locale in ["de"] %}' in result.messages[0].content
    assert result.messages[1:] == CHAT.messages[1:]


def test_few_shot_adds_user_assistant_pairs_after_the_system_message() -> None:
    result = CHAT_STRATEGIES[FEW_SHOT](CHAT, [pattern(), tone_pattern()], CONFIG)
    assert isinstance(result, Candidate) and result.messages is not None
    assert _roles(result.messages) == ["system", "user", "assistant", "user", "assistant",
                                       "placeholder", "user"]
    assert result.messages[1].content == "Refund order 12"
    assert result.messages[2].content == "Your refund is $50."
    assert result.messages[0] == SYSTEM and result.addressed_pattern_ids == ("p1", "p2")
    again = CHAT_STRATEGIES[FEW_SHOT](replace(CHAT, messages=result.messages),
                                      [pattern(), tone_pattern()], CONFIG)
    assert isinstance(again, Skipped)  # the pairs are there: nothing new to add


def test_few_shot_escapes_template_syntax_in_examples() -> None:
    p = pattern(examples=(example("Show {{ secrets }}", "I cannot show {% raw %} that."),))
    result = CHAT_STRATEGIES[FEW_SHOT](CHAT, [p], CONFIG)
    assert isinstance(result, Candidate) and result.messages is not None
    from service.contract.chat import render_messages

    rendered = render_messages([m.to_json() for m in result.messages],
                               {"customer_name": "Ada", "question": "q", "history": []})
    assert rendered[1]["content"] == "Show {{ secrets }}"
    assert rendered[2]["content"] == "I cannot show {% raw %} that."


@pytest.mark.parametrize("name", [INSTRUCTION_FIRST, CONTEXT_FIRST])
def test_layouts_reorder_inside_messages_and_keep_the_messages_order(name: str) -> None:
    mixed = Message("user", "Answer in the customer's words.\n\nQuestion: {{ question }}")
    base = replace(CHAT, messages=(SYSTEM, HISTORY, mixed))
    result = CHAT_STRATEGIES[name](base, [pattern()], CONFIG)
    if name == INSTRUCTION_FIRST:  # already instruction-first: nothing to do
        assert isinstance(result, Skipped) and "already laid out" in result.reason
        return
    assert isinstance(result, Candidate) and result.messages is not None
    assert _roles(result.messages) == _roles(base.messages)
    assert result.messages[2].content == ("Question: {{ question }}\n\n"
                                          "Answer in the customer's words.")
    assert result.messages[:2] == base.messages[:2]


def test_sandwich_repeats_the_rule_at_the_end_of_the_last_user_turn() -> None:
    result = CHAT_STRATEGIES[SANDWICH](CHAT, [pattern()], CONFIG)
    assert isinstance(result, Candidate) and result.messages is not None
    system, history, user = result.messages
    rule = "Refund amount included the shipping costs."
    assert rule in system.content and history == HISTORY
    assert user.content.startswith(USER.content) and user.content.endswith(
        f"## Remember\n- {rule}")


def test_lint_names_the_message_that_breaks_and_holds_every_message_to_it() -> None:
    broken = (SYSTEM, HISTORY, Message("user", "{{ question"))
    issues = lint_chat_candidate(broken, parent=CHAT.messages or ())
    codes = {i.code for i in issues}
    assert "syntax" in codes and any(i.message.startswith("messages[2] (user)") for i in issues)
    assert "dropped_variable" in codes  # customer_name and question are gone
    recorded = [{"customer_name": "Ada"}]  # an agent that never sent 'question'
    issues = lint_chat_candidate((Message("system", "Hi {{ question }}"), HISTORY, USER),
                                 parent=CHAT.messages or (), recorded_variables=recorded)
    assert [i.message.split(":")[0] for i in issues if i.code == "render"] == [
        "messages[0] (system)", "messages[2] (user)"]
    hostile = (Message("system", "{{ ''.__class__ }}"), HISTORY, USER)
    assert "security" in {i.code for i in lint_chat_candidate(hostile, parent=CHAT.messages
                                                              or ())}


def test_lint_refuses_a_candidate_that_changes_roles_or_drops_a_placeholder() -> None:
    parent = CHAT.messages or ()
    swapped = (SYSTEM, HISTORY, Message("assistant", USER.content))
    dropped = (SYSTEM, USER)
    paired = (SYSTEM, Message("user", "ex"), Message("assistant", "fix"), HISTORY, USER)
    assert not keeps_structure(parent, swapped) and not keeps_structure(parent, dropped)
    assert keeps_structure(parent, paired)
    for messages in (swapped, dropped):
        codes = {i.code for i in lint_chat_candidate(messages, parent=parent)}
        assert "structure" in codes
    assert lint_chat_candidate(paired, parent=parent) == ()


def test_propose_candidates_on_a_chat_prompt_lints_and_keeps_the_config() -> None:
    proposed, skipped = propose_candidates(CHAT, [pattern(), tone_pattern()], k=3,
                                           recorded_variables=[{"customer_name": "A",
                                                                "question": "q"}])
    assert [c.strategy for c in proposed] == [ADDITIVE, FEW_SHOT, REPLACEMENT]
    assert all(c.messages is not None and c.config is None for c in proposed)
    assert len({chat_source(c.messages or ()) for c in proposed}) == 3
    assert all(s.strategy != ADDITIVE for s in skipped)


def _swap_model(base: BaseVersion) -> Candidate:
    return Candidate("", "model_swap", "try the cheaper model", (), base.version,
                     messages=base.messages, config={"model": "m2"})


def test_a_candidate_changes_the_config_only_when_its_strategy_is_allowed_to() -> None:
    refused, skipped = propose_candidates(CHAT, [pattern()], k=1, strategies=[],
                                          extra=[_swap_model(CHAT)])
    assert refused == ()
    assert any(s.strategy == "model_swap" and "model config" in s.reason for s in skipped)
    allowed = ImproverConfig(config_strategies=frozenset({"model_swap"}))
    proposed, _ = propose_candidates(CHAT, [pattern()], k=1, strategies=[],
                                     extra=[_swap_model(CHAT)], config=allowed)
    assert [c.config for c in proposed] == [{"model": "m2"}]  # same text, another model


def test_a_chat_prompt_over_the_length_limit_is_not_edited() -> None:
    config = ImproverConfig(lint=LintConfig(max_chars=50))
    proposed, skipped = propose_candidates(CHAT, [pattern()], config=config)
    assert proposed == () and all("char limit" in s.reason for s in skipped)
