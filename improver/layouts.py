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
    chunks = split_chunks(base.template)
    if not chunks:
        return Skipped(name, "the template has no blank-line boundary outside a Jinja block")
    kinds = {c.kind for c in chunks}
    if "context" not in kinds:
        return Skipped(name, "no context block (a paragraph with variables) to move")
    if not kinds & {"instruction", "rules", "examples"}:
        return Skipped(name, "no instruction block to move")
    cue = _output_cue(chunks)
    movable = [c for c in chunks if c is not cue and c.kind != "reminder"]
    ordered = [c for kind in front + back for c in movable if c.kind == kind]
    ordered += [c for c in chunks if c.kind == "reminder"] + ([cue] if cue else [])
    if [c.start for c in ordered] == [c.start for c in chunks]:
        return Skipped(name, f"the prompt is already laid out {name.replace('_', '-')}")
    template = _assemble(base.template, chunks, [c.text for c in ordered])
    first = "instructions come" if front[0] == "instruction" else "context comes"
    return Candidate(
        template=template,
        strategy=name,
        rationale=(
            f"Reordered the prompt so the {first} first ({' > '.join(front + back)}), "
            "text unchanged; a layout change only, so it addresses no pattern directly"
        ),
        addressed_pattern_ids=(),
        parent_version=base.version,
    )


def instruction_first(
    base: BaseVersion, patterns: Sequence[Pattern], config: StrategyConfig
) -> Candidate | Skipped:
    """Return the template with instructions, learned rules and examples before the context."""
    return _reorder(INSTRUCTION_FIRST, base, ("instruction", "rules", "examples"), ("context",))


def context_first(
    base: BaseVersion, patterns: Sequence[Pattern], config: StrategyConfig
) -> Candidate | Skipped:
    """Return the template with the context first and the instructions after it."""
    return _reorder(CONTEXT_FIRST, base, ("context",), ("instruction", "rules", "examples"))


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
    template = add_feedback(base.template, [rule])
    chunks = split_chunks(template)
    if not chunks:
        return Skipped(SANDWICH, "the template has no blank-line boundary outside a Jinja block")
    reminder = f"{REMINDER_HEADING}\n{rule}"
    if any(c.kind == "reminder" and c.text.strip() == reminder for c in chunks):
        return Skipped(SANDWICH, "the critical rule is already repeated last")
    cue = _output_cue(chunks)
    kept = [c.text for c in chunks if c.kind != "reminder" and c is not cue]
    ordered = [*kept, reminder] + ([cue.text] if cue else [])
    return Candidate(
        template=_assemble(template, chunks, ordered),
        strategy=SANDWICH,
        rationale=(
            f"Repeated the critical rule at the end of the prompt (recency) under "
            f"'{REMINDER_HEADING}', for the top pattern {describe(top)}"
        ),
        addressed_pattern_ids=(top.pattern_id,),
        parent_version=base.version,
    )
