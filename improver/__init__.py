"""Pure candidate generation: sandboxed templates, edit strategies, lint, the LLM rewriter.

Names load on first use (PEP 562): the agent SDK imports ``improver.templates`` to render,
and must not pay for the strategies, which load scikit-learn through mining.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analytics.lazy import lazy_exports

_WHERE = {
    "DEFAULT_PRIORITY": "candidates", "STRATEGIES": "candidates", "ImproverConfig": "candidates",
    "propose_candidates": "candidates",
    "LintConfig": "lint", "LintIssue": "lint", "lint_candidate": "lint",
    "normalised_hash": "lint", "budget_issues": "lint",
    "RenderBudget": "render_budget", "RenderBudgetExceeded": "templates",
    "BaseVersion": "model", "Candidate": "model", "Skipped": "model", "Strategy": "model",
    "StrategyConfig": "model",
    "LLM_REWRITER": "rewriter", "BudgetExhausted": "rewriter", "LLMRewriter": "rewriter",
    "RewriterConfig": "rewriter", "RewriterError": "rewriter", "Usage": "rewriter",
    "MissingVariableError": "templates", "ParsedTemplate": "templates",
    "TemplateError": "templates", "TemplateSecurityError": "templates",
    "escape_literal": "templates", "parse_template": "templates",
    "render_template": "templates", "template_variables": "templates",
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
    "RenderBudget",
    "RenderBudgetExceeded",
    "RewriterConfig",
    "RewriterError",
    "Skipped",
    "Strategy",
    "StrategyConfig",
    "TemplateError",
    "TemplateSecurityError",
    "Usage",
    "budget_issues",
    "escape_literal",
    "lint_candidate",
    "normalised_hash",
    "parse_template",
    "propose_candidates",
    "render_template",
    "template_variables",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals(), __all__)


if TYPE_CHECKING:
    from improver.candidates import (
        DEFAULT_PRIORITY,
        STRATEGIES,
        ImproverConfig,
        propose_candidates,
    )
    from improver.lint import (
        LintConfig,
        LintIssue,
        budget_issues,
        lint_candidate,
        normalised_hash,
    )
    from improver.model import BaseVersion, Candidate, Skipped, Strategy, StrategyConfig
    from improver.render_budget import RenderBudget
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
        RenderBudgetExceeded,
        TemplateError,
        TemplateSecurityError,
        escape_literal,
        parse_template,
        render_template,
        template_variables,
    )
