"""Replacement strategy: an instruction implicated by a pattern is rewritten or removed.

An instruction is implicated when it shares enough content words with the pattern's
complaint (terms, label, representative reason): "Always add shipping to the refund" and
"refund included shipping" point at the same behaviour, and the instruction is the likely
cause. Rewriting turns it into the pattern's rule; removing drops it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from analytics.mining.model import Pattern
from improver.model import BaseVersion, Candidate, Skipped, StrategyConfig
from improver.prompt_text import (
    EXAMPLES_HEADING,
    REMINDER_HEADING,
    RULES_HEADING,
    content_words,
    describe,
    find_section,
    has_rule_content,
    pattern_words,
    rule_text,
    top_patterns,
)
from improver.templates import TemplateError, escape_literal, parse_template

REPLACEMENT = "replacement"
_BULLET = re.compile(r"^(\s*(?:[-*+•]|\d+[.)])\s+)")
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
        for heading in (RULES_HEADING, EXAMPLES_HEADING, REMINDER_HEADING)
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


def _rewrite(line: str, pattern: Pattern, config: StrategyConfig) -> str:
    bullet = _BULLET.match(line)
    prefix = bullet.group(1) if bullet else line[: len(line) - len(line.lstrip())]
    return prefix + escape_literal(rule_text(pattern, config.max_reason_chars))


def replacement(
    base: BaseVersion, patterns: Sequence[Pattern], config: StrategyConfig
) -> Candidate | Skipped:
    """Return the template with each implicated instruction rewritten as a rule, or removed."""
    top = [p for p in top_patterns(patterns, config.max_patterns) if has_rule_content(p)]
    if not top:
        return Skipped(REPLACEMENT, "no active pattern with a complaint to match instructions to")
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
        if config.replacement_mode == "remove":
            end = line.end + 1 if template[line.end : line.end + 1] == "\n" else line.end
            template = template[: line.start] + template[end:]
        else:
            new = _rewrite(line.text, item.pattern, config)
            template = template[: line.start] + new + template[line.end :]
    verb = "Removed" if config.replacement_mode == "remove" else "Rewrote as its rule"
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
