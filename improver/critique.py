"""The LLM rewriter's conversation: a critique from failure examples, then an edit.

Textual-gradient style (ProTeGi, TextGrad): the first call asks why the prompt produced
these failures, the second applies that critique to the prompt. Pure: messages in, text out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from analytics.mining.model import Pattern

Message = dict[str, str]

CRITIQUE_SYSTEM = (
    "You are an expert prompt engineer. You review the prompt template of an LLM agent "
    "against failures reported by its users and write a critique: for each failure, which "
    "part of the prompt caused it or what the prompt fails to say. Be specific and brief."
)
EDIT_SYSTEM = (
    "You are an expert prompt engineer. You edit the prompt template of an LLM agent to "
    "fix the failures described in a critique. The template uses Jinja2: keep every "
    "{{ variable }} placeholder and every {% ... %} tag exactly as written, and do not add "
    "new variables. Change only what the critique calls for. Reply with the complete "
    "revised template between <prompt> and </prompt> and nothing else."
)
_PROMPT_BLOCK = re.compile(r"<prompt>\n?(.*)</prompt>", re.DOTALL)
_FENCE = re.compile(r"```[\w-]*\n(.*?)```", re.DOTALL)


def _clip(text: str | None, max_chars: int) -> str:
    text = (text or "").strip()
    return text if len(text) <= max_chars else text[:max_chars] + " …"


def failure_report(patterns: Sequence[Pattern], *, max_examples: int, max_field_chars: int) -> str:
    """Return the failures of the patterns as text: reason, then a few examples each."""
    parts: list[str] = []
    for number, pattern in enumerate(patterns, start=1):
        parts.append(
            f"Failure pattern {number}: {pattern.label} "
            f"({pattern.size} reports, categories: {', '.join(pattern.categories) or 'none'})\n"
            f"Reason: {_clip(pattern.representative_reason, max_field_chars)}"
        )
        for example in pattern.examples[:max_examples]:
            lines = [f"Reason: {_clip(example.reason, max_field_chars)}"] if example.reason else []
            if example.input_text:
                lines.append(f"Input: {_clip(example.input_text, max_field_chars)}")
            if example.output_text:
                lines.append(f"Agent output: {_clip(example.output_text, max_field_chars)}")
            if example.corrected_output:
                lines.append(f"Correct output: {_clip(example.corrected_output, max_field_chars)}")
            if lines:
                parts.append("Example:\n" + "\n".join(lines))
    return "\n\n".join(parts)


def critique_messages(template: str, report: str) -> list[Message]:
    """Return the chat messages that ask for a critique of the template."""
    user = (
        f"The prompt template:\n<prompt>\n{template}\n</prompt>\n\n"
        f"Failures reported in production:\n\n{report}\n\n"
        "Write the critique."
    )
    return [{"role": "system", "content": CRITIQUE_SYSTEM}, {"role": "user", "content": user}]


def edit_messages(template: str, report: str, critique: str) -> list[Message]:
    """Return the chat messages that ask for the template edited along the critique."""
    user = (
        f"The prompt template:\n<prompt>\n{template}\n</prompt>\n\n"
        f"Failures reported in production:\n\n{report}\n\n"
        f"The critique:\n<critique>\n{critique}\n</critique>\n\n"
        "Write the revised template."
    )
    return [{"role": "system", "content": EDIT_SYSTEM}, {"role": "user", "content": user}]


def extract_template(reply: str) -> str | None:
    """Return the template in a reply (<prompt> block, else a fenced block), or None."""
    match = _PROMPT_BLOCK.search(reply)
    if match is None:
        match = _FENCE.search(reply)
    if match is None:
        return None
    text = match.group(1)
    return text[:-1] if text.endswith("\n") else text
