"""Reviewer feedback as a prompt carries it: which patterns may speak, and in what words.

A rule is what reviewers reported, presented as feedback the model must act on ("Reviewers
flagged these problems in earlier answers; make sure none recurs:") with one cleaned
statement per pattern, never a reason pasted behind a fixed verb: "Avoid: please give the
date in ISO format" tells the model the opposite of what the reviewer meant. Noise clusters,
runtime failures nobody commented on and resolved patterns say nothing here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from analytics.mining.clarity import clean_statement, is_substantive, meaningful_correction
from analytics.mining.language import UNKNOWN, detect_language
from analytics.mining.model import Pattern, PatternExample
from improver.prompt_text import RULES_HEADING, add_to_section, find_section
from improver.templates import escape_literal

FEEDBACK_INTRO = "Reviewers flagged these problems in earlier answers; make sure none recurs:"
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_EXAMPLE_CHARS = 120  # a corrected example longer than this is for few-shot, not a rule
# An example helps a terse statement ("Wrong date format.") say what right looks like; a
# statement that already says it only gets longer (every token is paid on every call).
_TERSE_WORDS = 6


def prompt_language(template: str) -> str:
    """Return the language of the template's own words (Jinja stripped), or ``UNKNOWN``."""
    return detect_language(_JINJA.sub(" ", template))


def gives_examples(pattern: Pattern) -> bool:
    """Return whether a pattern's corrections may teach: active, not noise, from reviewers."""
    if pattern.status == "resolved" or pattern.noise:
        return False
    # Snapshots from before mining counted corrections have no statements; only corrections
    # carry a category there, so a category marks reviewer evidence.
    return pattern.corrections > 0 or (not pattern.statements and bool(pattern.categories))


def statement_for(pattern: Pattern, language: str = UNKNOWN) -> str | None:
    """Return the pattern's feedback in ``language`` when it has one (else its dominant one).

    None when the pattern must not become guidance: noise, runtime failures nobody commented
    on, resolved, or no reason that states a problem.
    """
    if not gives_examples(pattern):
        return None
    if pattern.statements:
        chosen = next((text for lang, text in pattern.statements if lang == language),
                      pattern.statements[0][1])
        return chosen.strip() or None
    reason = " ".join(pattern.representative_reason.split())
    if not reason or not is_substantive(reason):
        return None
    return clean_statement(reason)


def shorten(text: str, max_chars: int) -> str:
    """Return ``text`` on one line, cut at a word boundary to at most ``max_chars`` (plus …)."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    return text[:max_chars].rsplit(" ", 1)[0] + "…"


def corrected_example(pattern: Pattern) -> PatternExample | None:
    """Return a short example whose correction teaches something, if the pattern has one."""
    for example in pattern.examples:
        given = " ".join((example.input_text or "").split())
        fixed = " ".join((example.corrected_output or "").split())
        if (given and 0 < len(fixed) <= _EXAMPLE_CHARS and len(given) <= _EXAMPLE_CHARS
                and meaningful_correction(example.output_text, example.corrected_output)):
            return example
    return None


def feedback_text(pattern: Pattern, language: str, max_chars: int, *,
                  with_example: bool = False) -> str | None:
    """Return the plain-text feedback item for a pattern, with a corrected example if it helps.

    With ``with_example``, a terse statement (under six words) gets one short example whose
    correction teaches something: the input and the corrected answer.
    """
    statement = statement_for(pattern, language)
    if statement is None:
        return None
    text = shorten(statement, max_chars)
    if text[-1] not in ".!?…":
        text += "."
    terse = len(statement.split()) < _TERSE_WORDS
    example = corrected_example(pattern) if with_example and terse else None
    if example is not None:
        given = " ".join((example.input_text or "").split())
        fixed = " ".join((example.corrected_output or "").split())
        text += f' Example: "{given}" → "{fixed}"'
    return text


def feedback_line(pattern: Pattern, language: str, max_chars: int, *,
                  with_example: bool = False) -> str | None:
    """Return the feedback item as template source: a bullet with Jinja neutralised."""
    text = feedback_text(pattern, language, max_chars, with_example=with_example)
    return None if text is None else "- " + escape_literal(text)


def carries(template: str, line: str) -> bool:
    """Return whether the template already has this feedback item (with or without example)."""
    item = line.strip()
    return any(existing.strip() == item or existing.strip().startswith(item + " ")
               for existing in template.splitlines())


def guided_patterns(patterns: Sequence[Pattern], limit: int,
                    language: str = UNKNOWN) -> tuple[list[Pattern], list[Pattern]]:
    """Return (the first ``limit`` active patterns with feedback, the active ones passed over).

    Passed-over patterns are noise or carry no reviewer feedback; strategies name them in
    their reasons so an operator sees why the top pattern got no rule.
    """
    chosen: list[Pattern] = []
    passed: list[Pattern] = []
    for p in patterns:
        if p.status == "resolved":
            continue
        if statement_for(p, language) is None:
            passed.append(p)
        elif len(chosen) < max(limit, 0):
            chosen.append(p)
    return chosen, passed


def why_silent(passed: Sequence[Pattern]) -> str:
    """Return why the passed-over patterns give no guidance, for a Skipped reason."""
    if not passed:
        return "no active pattern"
    parts = []
    for p in passed[:3]:
        if p.noise:
            parts.append(f"{p.pattern_id} is noise ({p.noise})")
        elif not gives_examples(p):
            parts.append(f"{p.pattern_id} has no reviewer feedback (runtime failures only)")
        else:
            parts.append(f"{p.pattern_id} has no reason that states a problem")
    return "no active pattern gives feedback: " + "; ".join(parts)


def add_feedback(text: str, lines: Sequence[str]) -> str:
    """Return the text with feedback bullets added to its section (created with its intro)."""
    if find_section(text, RULES_HEADING) is not None:
        return add_to_section(text, RULES_HEADING, lines)
    return add_to_section(text, RULES_HEADING, [FEEDBACK_INTRO, *lines])
