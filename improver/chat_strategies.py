"""The strategies on chat prompts: each text strategy's edit, placed where it means the same.

- Rules (additive, contextual, replacement) edit the system message, where a chat prompt's
  instructions live; a prompt without one gets one first.
- Few-shot: a corrected example becomes a user turn and the assistant's corrected answer,
  inserted after the system message(s) and the examples already there, so it comes before
  the conversation the agent fills in.
- Layouts reorder the text inside each message and never the messages themselves (a user
  turn moved before the system message would change what both mean); sandwich adds the
  rule to the system message and repeats it at the end of the last user message, the turn
  the model answers.

Each is a ``Strategy`` like the text ones: ``BaseVersion`` in, ``Candidate | Skipped`` out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType

from analytics.mining.model import Pattern, PatternExample
from improver.chat import Message, chat_source, chat_text, system_index, with_content
from improver.feedback import add_feedback, carries, feedback_line, guided_patterns, why_silent
from improver.feedback import prompt_language as language_of
from improver.few_shot import FEW_SHOT, examples_rationale, pick_examples
from improver.layouts import (
    CONTEXT_FIRST,
    INSTRUCTION_FIRST,
    LAYOUTS,
    REMINDER_HEADING,
    SANDWICH,
    layout_rationale,
    remind_last,
    reorder_text,
)
from improver.model import BaseVersion, Candidate, Skipped, Strategy, StrategyConfig
from improver.prompt_text import describe
from improver.replacement import REPLACEMENT, replacement
from improver.rules import ADDITIVE, CONTEXTUAL, additive, contextual
from improver.templates import escape_literal, parse_template


def _with_system(messages: tuple[Message, ...]) -> tuple[tuple[Message, ...], int]:
    """Return the messages with a system message (added first if missing) and its index."""
    index = system_index(messages)
    if index is None:
        return (Message("system", ""), *messages), 0
    return messages, index


def _chat(base: BaseVersion, messages: tuple[Message, ...], result: Candidate,
          where: str) -> Candidate:
    return replace(result, template="", messages=messages, parent_version=base.version,
                   rationale=f"{result.rationale} ({where})")


def in_system_message(strategy: Strategy) -> Strategy:
    """Return ``strategy`` applied to a chat prompt's system message."""
    def on_chat(base: BaseVersion, patterns: Sequence[Pattern],
                config: StrategyConfig) -> Candidate | Skipped:
        assert base.messages is not None
        messages, index = _with_system(base.messages)
        text = BaseVersion(base.prompt, base.version, messages[index].content)
        result = strategy(text, patterns, config)
        if isinstance(result, Skipped):
            return result
        edited = with_content(messages, index, result.template.strip("\n"))
        return _chat(base, edited, result, f"in the system message, messages[{index}]")
    return on_chat


def _is_static(m: Message) -> bool:
    return not m.is_placeholder and not parse_template(m.content).variables


def _examples_end(messages: Sequence[Message]) -> tuple[int, list[tuple[str, str]]]:
    """Return where new examples go and the user/assistant pairs already there."""
    i = 0
    while i < len(messages) and messages[i].role == "system":
        i += 1
    pairs = []
    while (i + 1 < len(messages) and messages[i].role == "user"
           and messages[i + 1].role == "assistant"
           and _is_static(messages[i]) and _is_static(messages[i + 1])):
        pairs.append((messages[i].content, messages[i + 1].content))
        i += 2
    return i, pairs


def few_shot_chat(base: BaseVersion, patterns: Sequence[Pattern],
                  config: StrategyConfig) -> Candidate | Skipped:
    """Return the chat prompt with corrected examples added as user/assistant pairs."""
    assert base.messages is not None
    at, existing = _examples_end(base.messages)
    pair_of: dict[str, tuple[str, str]] = {}

    def block(example: PatternExample) -> str:
        pair = (escape_literal((example.input_text or "").strip()),
                escape_literal((example.corrected_output or "").strip()))
        source = f"{pair[0]}\n{pair[1]}"
        pair_of[source] = pair
        return source

    present = {f"{u}\n{a}" for u, a in existing}
    used = sum(len(u) + len(a) + 1 for u, a in existing)
    chosen = pick_examples(patterns, config, block=block, present=present.__contains__,
                           budget=config.max_examples_section_chars - used)
    if not chosen.examples:
        return Skipped(FEW_SHOT, chosen.reason)
    added: list[Message] = []
    for _pattern, example in chosen.examples:
        user, assistant = pair_of[block(example)]
        added += [Message("user", user), Message("assistant", assistant)]
    messages = (*base.messages[:at], *added, *base.messages[at:])
    rationale, addressed = examples_rationale(chosen, "a user turn and the corrected answer")
    return Candidate(template="", strategy=FEW_SHOT, rationale=rationale,
                     addressed_pattern_ids=addressed, parent_version=base.version,
                     messages=messages)


def _layout(name: str) -> Strategy:
    front, back = LAYOUTS[name]

    def on_chat(base: BaseVersion, patterns: Sequence[Pattern],
                config: StrategyConfig) -> Candidate | Skipped:
        assert base.messages is not None
        messages, changed, why = base.messages, [], []
        for index, m in enumerate(base.messages):
            if m.is_placeholder:
                continue
            text, reason = reorder_text(name, m.content, front, back)
            if text is None:
                why.append(f"messages[{index}] ({m.role}): {reason}")
                continue
            messages = with_content(messages, index, text)
            changed.append(f"messages[{index}] ({m.role})")
        if not changed:
            return Skipped(name, "no message to reorder: " + "; ".join(why))
        return Candidate(template="", strategy=name,
                         rationale=f"{layout_rationale(front, back)}; inside "
                                   f"{', '.join(changed)}, the messages' order kept",
                         addressed_pattern_ids=(), parent_version=base.version,
                         messages=messages)
    return on_chat


def sandwich_chat(base: BaseVersion, patterns: Sequence[Pattern],
                  config: StrategyConfig) -> Candidate | Skipped:
    """Return the chat prompt with the top rule in the system message and repeated last.

    "Last" is the end of the last user message: the turn the model answers, after any
    inserted history.
    """
    assert base.messages is not None
    language = language_of(chat_text(base.messages))
    chosen, passed = guided_patterns(patterns, 1, language)
    if not chosen:
        return Skipped(SANDWICH, why_silent(passed))
    top = chosen[0]
    rule = feedback_line(top, language, config.max_reason_chars)
    assert rule is not None
    if carries(chat_source(base.messages), rule):
        return Skipped(SANDWICH, "nothing new: the top pattern's feedback is already in the "
                                 "prompt, and repeating it is not a change worth a canary")
    messages, index = _with_system(base.messages)
    system = add_feedback(messages[index].content, [rule]).strip("\n")
    last = max((i for i, m in enumerate(messages) if m.role == "user" and i > index),
               default=None)
    if last is None:  # no user turn to end with: the system message is the whole prompt
        text, why = remind_last(system, rule)
        target = index
    else:
        messages = with_content(messages, index, system)
        text, why = remind_last(messages[last].content, rule)
        target = last
    if text is None:
        return Skipped(SANDWICH, why)
    messages = with_content(messages, target, text)
    return Candidate(
        template="", strategy=SANDWICH,
        rationale=(f"Added the critical rule to the system message and repeated it at the "
                   f"end of messages[{target}] ({messages[target].role}) under "
                   f"'{REMINDER_HEADING}' (recency), for the top pattern {describe(top)}"),
        addressed_pattern_ids=(top.pattern_id,), parent_version=base.version,
        messages=messages)


CHAT_STRATEGIES: Mapping[str, Strategy] = MappingProxyType({
    ADDITIVE: in_system_message(additive),
    FEW_SHOT: few_shot_chat,
    REPLACEMENT: in_system_message(replacement),
    INSTRUCTION_FIRST: _layout(INSTRUCTION_FIRST),
    CONTEXT_FIRST: _layout(CONTEXT_FIRST),
    SANDWICH: sandwich_chat,
    CONTEXTUAL: in_system_message(contextual),
})

__all__ = ["CHAT_STRATEGIES", "few_shot_chat", "in_system_message", "sandwich_chat"]
