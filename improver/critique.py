"""The LLM rewriter's conversation: reflect on failure traces, then one merged edit.

GEPA- and HRPO-style reflection: the model sees the traces of the top patterns (the input,
what the agent answered, what the reviewer corrected it to, the reviewer's note), diagnoses
a root cause per pattern and which patterns share one, then writes a single revised prompt
that addresses as many patterns as it can and says which. Pure: messages in, text out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from analytics.mining.clarity import meaningful_correction
from analytics.mining.model import Pattern
from improver.chat import PLACEHOLDER
from improver.chat import Message as PromptMessage
from improver.feedback import statement_for

Message = dict[str, str]

CRITIQUE_SYSTEM = (
    "You are an expert prompt engineer. You are shown the prompt template of an LLM agent "
    "and traces of its failures in production, grouped into patterns: the input, the "
    "agent's output, the reviewer's corrected output and the reviewer's note. For each "
    "pattern, diagnose the root cause: what the prompt fails to say, or says wrongly, that "
    "led to these outputs, and what general instruction would have produced the corrected "
    "ones. Then say which patterns share a root cause. Be specific and brief."
)
EDIT_SYSTEM = (
    "You are an expert prompt engineer. You revise the prompt template of an LLM agent "
    "along a diagnosis of its failure patterns. Write ONE revised template that addresses "
    "as many of the patterns as possible in a single coherent edit: merge instructions "
    "that share a root cause, state what the agent must do (not the reviewers' words), "
    "change nothing else. The template uses Jinja2: keep every {{ variable }} placeholder "
    "and every {% ... %} tag exactly as written, and do not add new variables. Reply with "
    "the complete revised template between <prompt> and </prompt>, then the numbers of the "
    "patterns your edit addresses between <addressed> and </addressed>, e.g. "
    "<addressed>1, 3</addressed>."
)
CHAT_SHAPE = (
    " The template is a chat prompt: its messages in order, each between "
    '<message role="..."> and </message>, and <placeholder name="..."/> lines where the '
    "agent inserts messages (the chat history)."
)
CHAT_EDIT = CHAT_SHAPE + (
    " Keep every message with its role, the messages' order and every placeholder line "
    "exactly as they are; edit the contents only, and put instructions in the system "
    "message."
)
_CHAT_PART = re.compile(
    r'<message role="(?P<role>[a-z]+)"(?: name="(?P<name>[^"]*)")?>\n?(?P<content>.*?)\n?'
    r'</message>|<placeholder name="(?P<slot>[A-Za-z0-9_]+)"\s*/>', re.DOTALL)
_PROMPT_BLOCK = re.compile(r"<prompt>\n?(.*)</prompt>", re.DOTALL)
_FENCE = re.compile(r"```[\w-]*\n(.*?)```", re.DOTALL)
_ADDRESSED = re.compile(r"<addressed>(.*?)</addressed>", re.DOTALL)


def _clip(text: str | None, max_chars: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= max_chars else text[:max_chars] + " …"


def trace_report(patterns: Sequence[Pattern], *, language: str, max_examples: int,
                 max_field_chars: int) -> str:
    """Return the patterns as text: reviewer feedback, where it occurs, then traces."""
    parts: list[str] = []
    for number, pattern in enumerate(patterns, start=1):
        head = [f"Pattern {number}: {pattern.label} ({pattern.size} reports)"]
        statement = statement_for(pattern, language)
        if statement:
            head.append(f"Reviewer feedback: {_clip(statement, max_field_chars)}")
        if pattern.context is not None:
            values = ", ".join(pattern.context.values)
            head.append(f"Occurs mostly when {pattern.context.variable} is one of: {values}")
        parts.append("\n".join(head))
        traces = 0
        for example in pattern.examples:
            if traces >= max_examples:
                break
            fixed = example.corrected_output if meaningful_correction(
                example.output_text, example.corrected_output) else None
            if not (example.input_text or fixed):
                continue  # a trace without input or fix shows nothing the feedback does not
            lines = [f"Trace {number}.{traces + 1}:"]
            if example.input_text:
                lines.append(f"Input: {_clip(example.input_text, max_field_chars)}")
            if example.output_text:
                lines.append(f"Agent output: {_clip(example.output_text, max_field_chars)}")
            if fixed:
                lines.append(f"Reviewer's correction: {_clip(fixed, max_field_chars)}")
            if example.reason.strip():
                lines.append(f"Reviewer's note: {_clip(example.reason, max_field_chars)}")
            parts.append("\n".join(lines))
            traces += 1
    return "\n\n".join(parts)


def format_chat(messages: Sequence[PromptMessage]) -> str:
    """Return a chat prompt as the rewriter shows it: tagged messages and placeholders."""
    parts = []
    for m in messages:
        if m.is_placeholder:
            parts.append(f'<placeholder name="{m.name}"/>')
        else:
            name = f' name="{m.name}"' if m.name else ""
            parts.append(f'<message role="{m.role}"{name}>\n{m.content}\n</message>')
    return "\n".join(parts)


def parse_chat(text: str, like: Sequence[PromptMessage]) -> tuple[PromptMessage, ...] | str:
    """Return the messages of an edited chat prompt, or why it is not ``like``'s structure."""
    found: list[PromptMessage] = []
    position = 0
    for match in _CHAT_PART.finditer(text):
        if text[position:match.start()].strip():
            return "the reply has text outside the messages"
        position = match.end()
        if match.group("slot") is not None:
            found.append(PromptMessage(PLACEHOLDER, "", match.group("slot")))
        else:
            found.append(PromptMessage(match.group("role"), match.group("content"),
                                 match.group("name") or None))
    if text[position:].strip():
        return "the reply has text outside the messages"
    shape = [(m.role, m.name if m.is_placeholder else None) for m in found]
    if shape != [(m.role, m.name if m.is_placeholder else None) for m in like]:
        return "the reply changed the conversation's messages (roles, order or placeholders)"
    return tuple(PromptMessage(m.role, m.content, old.name if not m.is_placeholder else m.name)
                 for m, old in zip(found, like, strict=True))


def critique_messages(template: str, report: str, *, chat: bool = False) -> list[Message]:
    """Return the chat messages that ask for a diagnosis of the traces."""
    user = (
        f"The prompt template:\n<prompt>\n{template}\n</prompt>\n\n"
        f"Failure patterns and their traces:\n\n{report}\n\n"
        "Write the diagnosis."
    )
    system = CRITIQUE_SYSTEM + (CHAT_SHAPE if chat else "")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def edit_messages(template: str, report: str, critique: str, *,
                  chat: bool = False) -> list[Message]:
    """Return the chat messages that ask for one revised template along the diagnosis."""
    user = (
        f"The prompt template:\n<prompt>\n{template}\n</prompt>\n\n"
        f"Failure patterns and their traces:\n\n{report}\n\n"
        f"The diagnosis:\n<critique>\n{critique}\n</critique>\n\n"
        "Write the revised template and the patterns it addresses."
    )
    system = EDIT_SYSTEM + (CHAT_EDIT if chat else "")
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def extract_template(reply: str) -> str | None:
    """Return the template in a reply (<prompt> block, else a fenced block), or None."""
    match = _PROMPT_BLOCK.search(reply)
    if match is None:
        match = _FENCE.search(reply)
    if match is None:
        return None
    text = match.group(1)
    return text[:-1] if text.endswith("\n") else text


def extract_addressed(reply: str, n_patterns: int) -> tuple[int, ...] | None:
    """Return the 0-based patterns the reply says it addresses (None: it does not say)."""
    match = _ADDRESSED.search(reply)
    if match is None:
        return None
    numbers = {int(n) for n in re.findall(r"\d+", match.group(1))}
    return tuple(sorted(n - 1 for n in numbers if 1 <= n <= n_patterns))
