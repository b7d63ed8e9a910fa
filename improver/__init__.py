"""Pure candidate generation: sandboxed templates, edit strategies, lint, the LLM rewriter.

Names load on first use (PEP 562), so ``import improver.templates`` (what the agent SDK
needs to render a prompt) does not pull in the strategies, mining and scikit-learn/scipy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from improver.candidates import (
        DEFAULT_PRIORITY,
        STRATEGIES,
        ImproverConfig,
        propose_candidates,
    )
    from improver.lint import LintConfig, LintIssue, lint_candidate, normalised_hash
    from improver.model import BaseVersion, Candidate, Skipped, Strategy, StrategyConfig
    from improver.rewriter import (
        LLM_REWRITER,
        BudgetExhausted,
        LLMRewriter,
        RewriterConfig,
        RewriterError,
        Usage,
    )
    from improver.templates import (
        MissingVariableError,
        ParsedTemplate,
        TemplateError,
        TemplateSecurityError,
        escape_literal,
        parse_template,
        render_template,
        template_variables,
    )

_HOME: dict[str, str] = {
    **dict.fromkeys(("DEFAULT_PRIORITY", "STRATEGIES", "ImproverConfig", "propose_candidates"),
                    "improver.candidates"),
    **dict.fromkeys(("LintConfig", "LintIssue", "lint_candidate", "normalised_hash"),
                    "improver.lint"),
    **dict.fromkeys(("BaseVersion", "Candidate", "Skipped", "Strategy", "StrategyConfig"),
                    "improver.model"),
    **dict.fromkeys(("LLM_REWRITER", "BudgetExhausted", "LLMRewriter", "RewriterConfig",
                     "RewriterError", "Usage"), "improver.rewriter"),
    **dict.fromkeys(("MissingVariableError", "ParsedTemplate", "TemplateError",
                     "TemplateSecurityError", "escape_literal", "parse_template",
                     "render_template", "template_variables"), "improver.templates"),
}

__all__ = [
    "DEFAULT_PRIORITY",
    "LLM_REWRITER",
    "STRATEGIES",
    "BaseVersion",
    "BudgetExhausted",
    "Candidate",
    "ImproverConfig",
    "LLMRewriter",
    "LintConfig",
    "LintIssue",
    "MissingVariableError",
    "ParsedTemplate",
    "RewriterConfig",
    "RewriterError",
    "Skipped",
    "Strategy",
    "StrategyConfig",
    "TemplateError",
    "TemplateSecurityError",
    "Usage",
    "escape_literal",
    "lint_candidate",
    "normalised_hash",
    "parse_template",
    "propose_candidates",
    "render_template",
    "template_variables",
]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later lookups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
