"""Rule strategies: explicit rules for the top patterns, unconditional or per input category."""

from __future__ import annotations

import json
from collections.abc import Sequence

from analytics.mining.model import Pattern
from improver.model import BaseVersion, Candidate, Skipped, StrategyConfig
from improver.prompt_text import (
    RULES_HEADING,
    add_to_section,
    describe,
    has_line,
    has_rule_content,
    rule_line,
    top_patterns,
)
from improver.templates import parse_template

ADDITIVE = "additive"
CONTEXTUAL = "contextual"


def additive(
    base: BaseVersion, patterns: Sequence[Pattern], config: StrategyConfig
) -> Candidate | Skipped:
    """Return the template with a rule per top pattern added to the learned-rules section."""
    chosen = [p for p in top_patterns(patterns, config.max_patterns) if has_rule_content(p)]
    if not chosen:
        return Skipped(ADDITIVE, "no active pattern with a reason or label to phrase a rule from")
    new = [
        (p, line)
        for p in chosen
        if not has_line(base.template, line := rule_line(p, config.max_reason_chars))
    ]
    if not new:
        return Skipped(ADDITIVE, "every top pattern already has its rule in the prompt")
    template = add_to_section(base.template, RULES_HEADING, [line for _p, line in new])
    return Candidate(
        template=template,
        strategy=ADDITIVE,
        rationale=(
            f"Added {len(new)} explicit rule(s) under '{RULES_HEADING}', phrased from the "
            "representative reason of: " + "; ".join(describe(p) for p, _line in new)
        ),
        addressed_pattern_ids=tuple(p.pattern_id for p, _line in new),
        parent_version=base.version,
    )


def _category_condition(variable: str, categories: Sequence[str]) -> str:
    # A JSON string is a Jinja string literal with the same escapes; ensure_ascii=False since
    # JSON writes astral characters as surrogate pairs, which Jinja would decode as two.
    values = ", ".join(json.dumps(c, ensure_ascii=False) for c in categories)
    return f"{variable} in [{values}]"


def contextual(
    base: BaseVersion, patterns: Sequence[Pattern], config: StrategyConfig
) -> Candidate | Skipped:
    """Return the template with each top pattern's rule shown only for its input categories."""
    declared = parse_template(base.template).variables
    variable = next((v for v in config.category_variables if v in declared), None)
    if variable is None:
        names = ", ".join(repr(v) for v in config.category_variables)
        return Skipped(
            CONTEXTUAL,
            f"the prompt has no input-category variable ({names}) to condition guidance on",
        )
    chosen = [
        p
        for p in top_patterns(patterns, config.max_patterns)
        if has_rule_content(p) and any(c.strip() for c in p.categories)
    ]
    if not chosen:
        return Skipped(CONTEXTUAL, "no active pattern is tied to an input category")
    lines: list[str] = []
    addressed: list[Pattern] = []
    for pattern in chosen:
        categories = sorted({c for c in pattern.categories if c.strip()})
        condition = _category_condition(variable, categories)
        rule = rule_line(pattern, config.max_reason_chars) + "{% endif %}"
        if has_line(base.template, rule):
            continue
        # '{%-' eats the newline before it and the branch brings its own, so the rule
        # renders as one more bullet when the category matches and as nothing otherwise.
        line = f"{{%- if {condition} %}}\n{rule}"
        lines.append(line)
        addressed.append(pattern)
    if not lines:
        return Skipped(CONTEXTUAL, "every top pattern already has its conditional guidance")
    template = add_to_section(base.template, RULES_HEADING, lines)
    return Candidate(
        template=template,
        strategy=CONTEXTUAL,
        rationale=(
            f"Added guidance conditioned on '{variable}' so it only shows for the input "
            "categories where each pattern occurs: "
            + "; ".join(f"{describe(p)} in {sorted(set(p.categories))}" for p in addressed)
        ),
        addressed_pattern_ids=tuple(p.pattern_id for p in addressed),
        parent_version=base.version,
    )
