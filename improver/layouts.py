"""Structural strategies: reorder instructions and context, or repeat the critical rule last.

Each layout changes one thing about the prompt, so a canary that wins or loses says which
change did it. Chunks move whole (see ``split_chunks``), so Jinja blocks are never cut.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    REMINDER_HEADING,
    Chunk,
    describe,
    split_chunks,
)

INSTRUCTION_FIRST = "instruction_first"
CONTEXT_FIRST = "context_first"
SANDWICH = "sandwich"
_MAX_CUE_CHARS = 80
# Each layout: the chunk kinds that go first, then the ones that follow.
LAYOUTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    INSTRUCTION_FIRST: (("instruction", "rules", "examples"), ("context",)),
    CONTEXT_FIRST: (("context",), ("instruction", "rules", "examples")),
}


def _output_cue(chunks: Sequence[Chunk]) -> Chunk | None:
    """Return the trailing "Answer:"-style line that must stay last, if there is one."""
    if not chunks:
        return None
    last = chunks[-1]
    text = last.text.strip()
    if last.kind == "instruction" and text.endswith(":") and len(text) <= _MAX_CUE_CHARS:
        return last
    return None


def _assemble(template: str, chunks: Sequence[Chunk], ordered: Sequence[str]) -> str:
    head = template[: chunks[0].start]
    tail = template[chunks[-1].end :]
    return head + "\n\n".join(ordered) + tail


def _reorder(
    name: str, base: BaseVersion, front: tuple[str, ...], back: tuple[str, ...]
) -> Candidate | Skipped:
    template, why = reorder_text(name, base.template, front, back)
    if template is None:
        return Skipped(name, why)
    return Candidate(
        template=template,
        strategy=name,
        rationale=layout_rationale(front, back),
        addressed_pattern_ids=(),
        parent_version=base.version,
    )


def layout_rationale(front: tuple[str, ...], back: tuple[str, ...]) -> str:
    """Return why a layout candidate was written."""
    first = "instructions come" if front[0] == "instruction" else "context comes"
    return (f"Reordered the prompt so the {first} first ({' > '.join(front + back)}), "
            "text unchanged; a layout change only, so it addresses no pattern directly")


def instruction_first(
    base: BaseVersion, patterns: Sequence[Pattern], config: StrategyConfig
) -> Candidate | Skipped:
    """Return the template with instructions, learned rules and examples before the context."""
    return _reorder(INSTRUCTION_FIRST, base, *LAYOUTS[INSTRUCTION_FIRST])


def context_first(
    base: BaseVersion, patterns: Sequence[Pattern], config: StrategyConfig
) -> Candidate | Skipped:
    """Return the template with the context first and the instructions after it."""
    return _reorder(CONTEXT_FIRST, base, *LAYOUTS[CONTEXT_FIRST])


def remind_last(text: str, rule: str) -> tuple[str | None, str]:
    """Return (the text with ``rule`` repeated last, "") or (None, why it cannot be).

    The rule goes under the reminder heading; a trailing "Answer:"-style cue stays last.
    """
    chunks = split_chunks(text)
    if not chunks:
        return None, "the template has no blank-line boundary outside a Jinja block"
    reminder = f"{REMINDER_HEADING}\n{rule}"
    if any(c.kind == "reminder" and c.text.strip() == reminder for c in chunks):
        return None, "the critical rule is already repeated last"
    cue = _output_cue(chunks)
    kept = [c.text for c in chunks if c.kind != "reminder" and c is not cue]
    ordered = [*kept, reminder] + ([cue.text] if cue else [])
    return _assemble(text, chunks, ordered), ""


def reorder_text(name: str, text: str, front: tuple[str, ...],
                 back: tuple[str, ...]) -> tuple[str | None, str]:
    """Return (the text with its chunks in the layout's order, "") or (None, why not)."""
    chunks = split_chunks(text)
    if not chunks:
        return None, "the template has no blank-line boundary outside a Jinja block"
    kinds = {c.kind for c in chunks}
    if "context" not in kinds:
        return None, "no context block (a paragraph with variables) to move"
    if not kinds & {"instruction", "rules", "examples"}:
        return None, "no instruction block to move"
    cue = _output_cue(chunks)
    movable = [c for c in chunks if c is not cue and c.kind != "reminder"]
    ordered = [c for kind in front + back for c in movable if c.kind == kind]
    ordered += [c for c in chunks if c.kind == "reminder"] + ([cue] if cue else [])
    if [c.start for c in ordered] == [c.start for c in chunks]:
        return None, f"the prompt is already laid out {name.replace('_', '-')}"
    return _assemble(text, chunks, [c.text for c in ordered]), ""


def sandwich(
    base: BaseVersion, patterns: Sequence[Pattern], config: StrategyConfig
) -> Candidate | Skipped:
    """Return the template with the top pattern's feedback added and repeated at the end.

    Recency only helps a rule the prompt does not carry yet: repeating feedback that is
    already there (or a layout that changes nothing) is a do-nothing candidate, so it skips.
    """
    language = prompt_language(base.template)
    chosen, passed = guided_patterns(patterns, 1, language)
    if not chosen:
        return Skipped(SANDWICH, why_silent(passed))
    top = chosen[0]
    rule = feedback_line(top, language, config.max_reason_chars)
    assert rule is not None
    if carries(base.template, rule):
        return Skipped(SANDWICH, "nothing new: the top pattern's feedback is already in the "
                                 "prompt, and repeating it is not a change worth a canary")
    template, why = remind_last(add_feedback(base.template, [rule]), rule)
    if template is None:
        return Skipped(SANDWICH, why)
    return Candidate(
        template=template,
        strategy=SANDWICH,
        rationale=(
            f"Repeated the critical rule at the end of the prompt (recency) under "
            f"'{REMINDER_HEADING}', for the top pattern {describe(top)}"
        ),
        addressed_pattern_ids=(top.pattern_id,),
        parent_version=base.version,
    )
