"""Few-shot strategy: corrected outputs of the top patterns become worked examples."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from analytics.mining.clarity import meaningful_correction
from analytics.mining.model import Pattern, PatternExample
from improver.feedback import gives_examples
from improver.model import BaseVersion, Candidate, Skipped, StrategyConfig
from improver.prompt_text import (
    EXAMPLES_HEADING,
    add_to_section,
    content_words,
    describe,
    find_section,
)
from improver.templates import escape_literal

FEW_SHOT = "few_shot"


@dataclass(frozen=True, slots=True)
class _Option:
    pattern: Pattern
    example: PatternExample
    block: str  # source of the worked example, as the prompt carries it
    words: frozenset[str]


def _one_paragraph(text: str | None) -> str:
    # A learned section ends at the first blank line, so an example must not contain one.
    return re.sub(r"\n\s*\n", "\n", (text or "").strip())


def _format_example(example: PatternExample) -> str:
    input_text = _one_paragraph(example.input_text)
    corrected = _one_paragraph(example.corrected_output)
    return escape_literal(f"Input: {input_text}\nCorrect output: {corrected}")


def _usable(example: PatternExample, config: StrategyConfig) -> bool:
    input_text = (example.input_text or "").strip()
    corrected = (example.corrected_output or "").strip()
    # A truncated correction would teach the wrong output, so long ones are left out whole;
    # a "correction" that is a bare "ok" or repeats the output teaches nothing.
    return (
        bool(input_text and corrected)
        and len(input_text) <= config.max_example_field_chars
        and len(corrected) <= config.max_example_field_chars
        and meaningful_correction(example.output_text, example.corrected_output)
    )


def _distance(a: frozenset[str], b: frozenset[str]) -> float:
    union = a | b
    return 1.0 - len(a & b) / len(union) if union else 0.0


def _choose(options: list[_Option], limit: int, budget: int) -> list[_Option]:
    """Greedy max-min diversity: each pick is the option farthest from those already picked.

    Patterns not yet covered come first, so k examples span k patterns when they can.
    """
    chosen: list[_Option] = []
    remaining = list(options)
    used = 0
    while remaining and len(chosen) < limit:
        covered = {o.pattern.pattern_id for o in chosen}

        def score(option: _Option, covered: set[str] = covered) -> tuple[bool, float]:
            nearest = min((_distance(option.words, c.words) for c in chosen), default=1.0)
            return option.pattern.pattern_id not in covered, nearest

        # max() keeps the first of equal scores, so ties go to the higher-ranked pattern.
        best = max(remaining, key=score)
        remaining.remove(best)
        cost = len(best.block) + 2
        if used + cost > budget:
            continue
        chosen.append(best)
        used += cost
    return chosen


@dataclass(frozen=True, slots=True)
class Chosen:
    """Worked examples picked for a prompt, or why none could be."""

    examples: tuple[tuple[Pattern, PatternExample], ...]
    patterns: tuple[Pattern, ...]  # the top patterns they were picked from
    reason: str = ""  # why nothing was picked (empty when examples were)


def pick_examples(
    patterns: Sequence[Pattern],
    config: StrategyConfig,
    *,
    block: Callable[[PatternExample], str],
    present: Callable[[str], bool],
    budget: int,
) -> Chosen:
    """Return diverse corrected examples of the top patterns that the prompt lacks.

    ``block`` gives an example's source as the prompt will carry it (its length is what
    ``budget`` counts); ``present`` says whether the prompt already carries that source.
    """
    top = tuple(p for p in patterns if gives_examples(p))[: max(config.max_patterns, 0)]
    if not top:
        return Chosen((), (), "no active pattern with reviewer corrections (noise and "
                              "uncommented runtime failures teach nothing)")
    options: list[_Option] = []
    seen_blocks: set[str] = set()
    for pattern in top:
        for example in pattern.examples:
            if not _usable(example, config):
                continue
            source = block(example)
            if source in seen_blocks or present(source):
                continue
            seen_blocks.add(source)
            words = content_words(f"{example.input_text} {example.corrected_output}")
            options.append(_Option(pattern, example, source, words))
    if not options:
        return Chosen((), top, (
            "no top pattern has a new example with both an input and a corrected output "
            f"under {config.max_example_field_chars} chars that differs from the output"))
    chosen = _choose(options, config.max_examples, budget)
    if not chosen:
        return Chosen((), top, f"the worked-examples section would exceed "
                               f"{config.max_examples_section_chars} chars")
    return Chosen(tuple((o.pattern, o.example) for o in chosen), top)


def examples_rationale(chosen: Chosen, form: str) -> tuple[str, tuple[str, ...]]:
    """Return the rationale of a few-shot candidate and the patterns it addresses."""
    addressed = tuple(dict.fromkeys(p.pattern_id for p, _e in chosen.examples))
    by_id = {p.pattern_id: p for p in chosen.patterns}
    return (f"Added {len(chosen.examples)} worked example(s) ({form}), chosen for "
            "diversity across patterns: " + "; ".join(describe(by_id[i]) for i in addressed),
            addressed)


def few_shot(
    base: BaseVersion, patterns: Sequence[Pattern], config: StrategyConfig
) -> Candidate | Skipped:
    """Return the template with diverse corrected examples of the top patterns added."""
    section = find_section(base.template, EXAMPLES_HEADING)
    existing = base.template[section[0] : section[1]] if section else ""
    chosen = pick_examples(
        patterns, config, block=_format_example, present=lambda block: block in existing,
        budget=config.max_examples_section_chars - len(existing or EXAMPLES_HEADING))
    if not chosen.examples:
        return Skipped(FEW_SHOT, chosen.reason)
    template = add_to_section(base.template, EXAMPLES_HEADING,
                              [_format_example(e) for _p, e in chosen.examples])
    rationale, addressed = examples_rationale(chosen, "input and corrected output")
    return Candidate(
        template=template,
        strategy=FEW_SHOT,
        rationale=rationale,
        addressed_pattern_ids=addressed,
        parent_version=base.version,
    )
