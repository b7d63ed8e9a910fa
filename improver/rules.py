"""Rule strategies: reviewer feedback for the top patterns, always or for the inputs it concerns."""

from __future__ import annotations

import json
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
from improver.prompt_text import RULES_HEADING, describe, has_line
from improver.templates import parse_template

ADDITIVE = "additive"
CONTEXTUAL = "contextual"


def additive(
    base: BaseVersion, patterns: Sequence[Pattern], config: StrategyConfig
) -> Candidate | Skipped:
    """Return the template with a feedback item per top pattern in the reviewer-feedback section."""
    language = prompt_language(base.template)
    chosen, passed = guided_patterns(patterns, config.max_patterns, language)
    if not chosen:
        return Skipped(ADDITIVE, why_silent(passed))
    new: list[tuple[Pattern, str]] = []
    for p in chosen:
        bare = feedback_line(p, language, config.max_reason_chars)
        line = feedback_line(p, language, config.max_reason_chars,
                             with_example=config.feedback_examples)
        assert bare is not None and line is not None  # chosen patterns have a statement
        if not carries(base.template, bare):
            new.append((p, line))
    if not new:
        return Skipped(ADDITIVE, "nothing new: every top pattern's feedback is already in the "
                                 "prompt")
    template = add_feedback(base.template, [line for _p, line in new])
    return Candidate(
        template=template,
        strategy=ADDITIVE,
        rationale=(
            f"Added {len(new)} reviewer-feedback item(s) under '{RULES_HEADING}', each the "
            "clearest reviewer statement of: " + "; ".join(describe(p) for p, _line in new)
        ),
        addressed_pattern_ids=tuple(p.pattern_id for p, _line in new),
        parent_version=base.version,
    )


def _literal_list(values: Sequence[str]) -> str:
    # A JSON string is a Jinja string literal with the same escapes; ensure_ascii=False since
    # JSON writes astral characters as surrogate pairs, which Jinja would decode as two.
    return "[" + ", ".join(json.dumps(v, ensure_ascii=False) for v in values) + "]"


def _condition(pattern: Pattern) -> tuple[str, str] | None:
    """Return (Jinja condition, description) for where a pattern's feedback applies."""
    context = pattern.context
    if context is not None and context.values and context.variable.isidentifier():
        # The variable was recorded from the agents' inputs but the template may not use it
        # yet: 'is defined' keeps a render without it working (StrictUndefined).
        v = context.variable
        return (f"{v} is defined and {v} in {_literal_list(context.values)}",
                f"'{v}' in {list(context.values)} (Cramér's V {context.association:.2f}, "
                f"covers {context.coverage:.0%} of its records)")
    return None


def contextual(
    base: BaseVersion, patterns: Sequence[Pattern], config: StrategyConfig
) -> Candidate | Skipped:
    """Return the template with each top pattern's feedback shown only where its records are.

    "Where" is the recorded input variable that best separates the pattern's records from
    the rest (mining picks it: low cardinality, strong association, enough support), e.g.
    ``locale in ["de", "es"]`` for answers in the wrong language.
    """
    parse_template(base.template)  # a broken template is reported, not edited
    language = prompt_language(base.template)
    chosen, passed = guided_patterns(patterns, config.max_patterns, language)
    if not chosen:
        return Skipped(CONTEXTUAL, why_silent(passed))
    lines: list[str] = []
    addressed: list[tuple[Pattern, str]] = []
    for pattern in chosen:
        found = _condition(pattern)
        if found is None:
            continue
        condition, where = found
        rule = feedback_line(pattern, language, config.max_reason_chars)
        assert rule is not None
        if has_line(base.template, rule + "{% endif %}"):
            continue
        # '{%-' eats the newline before it and the branch brings its own, so the item
        # renders as one more bullet when the condition holds and as nothing otherwise.
        lines.append(f"{{%- if {condition} %}}\n{rule}{{% endif %}}")
        addressed.append((pattern, where))
    if not addressed:
        return Skipped(CONTEXTUAL, "no top pattern is tied to a recorded input variable that "
                                   "separates it from the rest (or its guidance is there)")
    template = add_feedback(base.template, lines)
    return Candidate(
        template=template,
        strategy=CONTEXTUAL,
        rationale=(
            "Added reviewer feedback shown only for the inputs where each pattern occurs: "
            + "; ".join(f"{describe(p)} when {where}" for p, where in addressed)
        ),
        addressed_pattern_ids=tuple(p.pattern_id for p, _where in addressed),
        parent_version=base.version,
    )
