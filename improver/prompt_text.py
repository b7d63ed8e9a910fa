"""The structure of a prompt's text: chunks, learned sections, rule lines, content words.

Strategies edit template source, so every cut they make must fall where the Jinja block
structure is balanced; ``split_chunks`` only cuts at blank lines outside any open block.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from analytics.mining.model import Pattern
from improver.templates import TemplateError, parse_template

RULES_HEADING = "## Reviewer feedback"
LEGACY_RULES_HEADING = "## Rules learned from corrections"  # versions written before it
EXAMPLES_HEADING = "## Worked examples"
REMINDER_HEADING = "## Remember"

ChunkKind = Literal["instruction", "context", "rules", "examples", "reminder"]
_SECTION_KINDS: dict[str, ChunkKind] = {
    RULES_HEADING: "rules",
    LEGACY_RULES_HEADING: "rules",
    EXAMPLES_HEADING: "examples",
    REMINDER_HEADING: "reminder",
}
_BLANK_LINE = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)*")
_HEADING_LINE = re.compile(r"^\s{0,3}#{1,6}\s")
_WORD = re.compile(r"[a-z0-9]+")
# Words too common to implicate an instruction in a complaint.
_STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have he her
    his i if in into is it its just me more most my no not of on or our out over she should
    so some such than that the their them then there these they this those to too under up
    very was we were what when where which while who why will with would you your always
    never must all any each every also only please""".split()  # noqa: SIM905 (readable)
)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A block of the template that can move as a unit: Jinja-balanced, blank-line bounded."""

    text: str
    kind: ChunkKind
    start: int  # offset of the chunk in the template
    end: int


def _parses(text: str) -> bool:
    try:
        parse_template(text)
    except TemplateError:
        return False
    return True


def _has_variables(text: str) -> bool:
    try:
        return bool(parse_template(text).variables)
    except TemplateError:
        return "{{" in text


def _is_heading_only(text: str) -> bool:
    lines = [line for line in text.splitlines() if line.strip()]
    return bool(lines) and all(_HEADING_LINE.match(line) for line in lines)


def _kind(text: str) -> ChunkKind:
    first_line = text.lstrip().split("\n", 1)[0].strip()
    if first_line in _SECTION_KINDS:
        return _SECTION_KINDS[first_line]
    return "context" if _has_variables(text) else "instruction"


def split_chunks(text: str) -> tuple[Chunk, ...]:
    """Return the template's movable chunks in order (empty if no safe cut exists)."""
    spans: list[tuple[int, int]] = []
    position = 0
    for match in _BLANK_LINE.finditer(text):
        spans.append((position, match.start()))
        position = match.end()
    spans.append((position, len(text)))
    chunks: list[Chunk] = []
    start: int | None = None
    for span_start, span_end in spans:
        if start is None:
            start = span_start
        body = text[start:span_end]
        if not body.strip():
            start = None
            continue
        # Merge forward until the block structure closes and a heading has its body.
        if not _parses(body) or _is_heading_only(body):
            continue
        chunks.append(Chunk(body, _kind(body), start, span_end))
        start = None
    if start is not None and text[start:].strip():
        if not _parses(text[start:]):
            return ()
        tail = text[start:]
        chunks.append(Chunk(tail, _kind(tail), start, len(text)))
    return tuple(chunks)


def find_section(text: str, heading: str) -> tuple[int, int] | None:
    """Return (start, end) offsets of a learned section: its heading and following lines."""
    match = re.search(rf"(?m)^[ \t]*{re.escape(heading)}[ \t]*$", text)
    if not match:
        return None
    blank = _BLANK_LINE.search(text, match.end())
    end = blank.start() if blank else len(text.rstrip("\n"))
    return match.start(), max(end, match.end())


def _insert_point(text: str) -> tuple[int, str, str]:
    """Return where a new section goes, and the separators before and after it."""
    chunks = split_chunks(text)
    for index, chunk in enumerate(chunks):
        if chunk.kind == "context" and index > 0:
            return chunk.start, "", "\n\n"
    stripped = text.rstrip()
    return len(stripped), "\n\n" if stripped else "", ""


def add_to_section(text: str, heading: str, lines: Sequence[str]) -> str:
    """Return the text with ``lines`` appended to the section, creating it if absent."""
    body = "\n".join(lines)
    span = find_section(text, heading)
    if span is not None:
        _start, end = span
        return text[:end] + "\n" + body + text[end:]
    position, before, after = _insert_point(text)
    return text[:position] + before + heading + "\n" + body + after + text[position:]


def has_line(text: str, line: str) -> bool:
    """Return whether ``line`` occurs as a whole line of the text (surrounding blanks ignored)."""
    return any(existing.strip() == line.strip() for existing in text.splitlines())


def top_patterns(patterns: Sequence[Pattern], limit: int) -> list[Pattern]:
    """Return the first ``limit`` patterns that are still active, in their ranked order."""
    return [p for p in patterns if p.status != "resolved"][: max(limit, 0)]


def content_words(text: str) -> frozenset[str]:
    """Return the lower-cased content words of a text, crudely stemmed (plural 's' dropped)."""
    words = set()
    for word in _WORD.findall(text.lower()):
        if word in _STOPWORDS or len(word) < 3:
            continue
        if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        words.add(word)
    return frozenset(words)


def pattern_words(pattern: Pattern) -> frozenset[str]:
    """Return the words that characterise a pattern's complaint (terms, label, statements)."""
    statements = " ".join(text for _lang, text in pattern.statements)
    return content_words(" ".join((*pattern.terms, pattern.label, pattern.representative_reason,
                                   statements)))


def describe(pattern: Pattern) -> str:
    """Return a short description of a pattern for rationales."""
    label = pattern.label or pattern.pattern_id
    return (f"{pattern.pattern_id} '{label}' ({pattern.size} records; "
            f"{pattern.share:.1%} of the records in its latest window)")
