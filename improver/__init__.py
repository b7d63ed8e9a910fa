"""Pure candidate generation: sandboxed templates, edit strategies, lint, the LLM rewriter."""

from __future__ import annotations

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
