"""Replacement strategy: an instruction implicated by a pattern is rewritten or removed.

An instruction is implicated when it shares enough content words with the pattern's
complaint (terms, label, statements): "Always add shipping to the refund" and "refund
included shipping" point at the same behaviour, and the instruction is the likely cause.
Removing drops it; rewriting drops it and adds the reviewers' feedback in its place (a
complaint cannot be turned into the opposite instruction by a fixed verb).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from analytics.mining.model import Pattern
from improver.feedback import (
    add_feedback,
    carries,
    feedback_line,
    guided_patterns,
    prompt_language,
    why_silent,
)
from improver.model import BaseVersion, Candidate, Skipped, StrategyConfig
from improver.prompt_text import (
    EXAMPLES_HEADING,
    LEGACY_RULES_HEADING,
    REMINDER_HEADING,
    RULES_HEADING,
    content_words,
    describe,
    find_section,
    pattern_words,
)
from improver.templates import TemplateError, parse_template

REPLACEMENT = "replacement"
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s")


@dataclass(frozen=True, slots=True)
class _Line:
    start: int
    end: int  # excluding the newline
    text: str


@dataclass(frozen=True, slots=True)
class _Implication:
    pattern: Pattern
    line: _Line
    shared: tuple[str, ...]


def _is_plain_instruction(text: str) -> bool:
    if not text.strip() or _HEADING.match(text) or "{%" in text or "{#" in text:
        return False
    try:
        return not parse_template(text).variables  # never cut a line that carries a variable
    except TemplateError:
        return False


def _instruction_lines(template: str) -> list[_Line]:
    learned = [
        span
        for heading in (RULES_HEADING, LEGACY_RULES_HEADING, EXAMPLES_HEADING, REMINDER_HEADING)
        if (span := find_section(template, heading)) is not None
    ]
    lines: list[_Line] = []
    position = 0
    for raw in template.split("\n"):
        start, end = position, position + len(raw)
        position = end + 1
        if any(s <= start < e for s, e in learned):
            continue  # learned rules and examples are ours; replacing them would undo a fix
        if _is_plain_instruction(raw):
            lines.append(_Line(start, end, raw))
    return lines


def _implications(
    lines: list[_Line], patterns: Sequence[Pattern], min_shared: int
) -> list[_Implication]:
    found: list[_Implication] = []
    taken: set[int] = set()
    for pattern in patterns:
        words = pattern_words(pattern)
        best: _Implication | None = None
        for line in lines:
            if line.start in taken:
                continue
            shared = tuple(sorted(content_words(line.text) & words))
            if len(shared) >= min_shared and (best is None or len(shared) > len(best.shared)):
                best = _Implication(pattern, line, shared)
        if best is not None:
            taken.add(best.line.start)
            found.append(best)
    return found


def replacement(
    base: BaseVersion, patterns: Sequence[Pattern], config: StrategyConfig
) -> Candidate | Skipped:
    """Return the template without the implicated instructions (and, rewriting, with feedback)."""
    language = prompt_language(base.template)
    top, passed = guided_patterns(patterns, config.max_patterns, language)
    if not top:
        return Skipped(REPLACEMENT, why_silent(passed))
    found = _implications(_instruction_lines(base.template), top, config.min_shared_terms)
    if not found:
        return Skipped(
            REPLACEMENT,
            f"no instruction shares {config.min_shared_terms}+ content words with the "
            "complaint of a top pattern",
        )
    template = base.template
    # Edit from the end so earlier offsets stay valid.
    for item in sorted(found, key=lambda i: i.line.start, reverse=True):
        line = item.line
        end = line.end + 1 if template[line.end : line.end + 1] == "\n" else line.end
        template = template[: line.start] + template[end:]
    if config.replacement_mode == "rewrite":
        lines = [feedback_line(item.pattern, language, config.max_reason_chars) for item in found]
        new = [line for line in dict.fromkeys(lines) if line and not carries(template, line)]
        if new:
            template = add_feedback(template, new)
    verb = ("Removed" if config.replacement_mode == "remove"
            else "Replaced with the reviewers' feedback")
    details = "; ".join(
        f"{item.line.text.strip()!r} (shares {', '.join(item.shared)} "
        f"with {describe(item.pattern)})"
        for item in found
    )
    return Candidate(
        template=template,
        strategy=REPLACEMENT,
        rationale=f"{verb} the instruction(s) implicated by a pattern: {details}",
        addressed_pattern_ids=tuple(item.pattern.pattern_id for item in found),
        parent_version=base.version,
    )
