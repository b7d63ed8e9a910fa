"""Small builders for the improver tests: patterns and examples with readable defaults."""

from __future__ import annotations

from typing import Any

from analytics.mining.model import Pattern, PatternExample


def example(
    input_text: str | None = "Refund order 12",
    corrected_output: str | None = "Your refund is $50.",
    output_text: str | None = "Your refund is $55 including shipping.",
    reason: str = "",
) -> PatternExample:
    """Return a worked example of a failure."""
    return PatternExample(input_text, output_text, corrected_output, reason)


def pattern(pattern_id: str = "p1", **overrides: Any) -> Pattern:
    """Return an active pattern of reviewer corrections; keyword arguments override any field.

    Overriding ``representative_reason`` alone also sets the statement to it (as mining
    would when that reason is the clearest one).
    """
    reason = overrides.get("representative_reason", "Refund amount included the shipping costs")
    values: dict[str, Any] = {
        "pattern_id": pattern_id,
        "label": "refund shipping",
        "terms": ("refund", "shipping"),
        "representative_reason": "Refund amount included the shipping costs",
        "size": 40,
        "share": 0.12,
        "severity_score": 40.0,
        "trend_counts": (5, 10, 25),
        "trend_slope": 10.0,
        "trend_z": 3.0,
        "status": "growing",
        "first_seen": 1_700_000_000.0,
        "last_seen": 1_700_100_000.0,
        "versions": (3,),
        "categories": ("billing",),
        "examples": (example(),),
        "statements": (("en", reason),),
        "language": "en",
        "corrections": 40,
        "window_records": 25,
    }
    values.update(overrides)
    return Pattern(**values)


def tone_pattern(pattern_id: str = "p2", **overrides: Any) -> Pattern:
    """Return a second, unrelated active pattern (rude tone on complaints)."""
    values: dict[str, Any] = {
        "label": "tone rude",
        "terms": ("tone", "rude"),
        "representative_reason": "The reply was rude to an upset customer",
        "corrections": 12,
        "size": 12,
        "share": 0.04,
        "categories": ("complaint",),
        "examples": (
            example(
                "Where is my package?? Third time asking!",
                "I am sorry for the wait; your package ships tomorrow.",
                "Calm down, it will come.",
            ),
        ),
    }
    values.update(overrides)
    return pattern(pattern_id, **values)


SUPPORT_TEMPLATE = """You are a support agent for ACME.
- Always include shipping costs in the refund amount.
- Be concise.

Customer: {{ customer_name }}
Category: {{ category }}
Message: {{ message }}

Reply:
"""

SUPPORT_VARIABLES = {"customer_name": "Ada", "category": "billing", "message": "Refund please"}

# The feedback items the two builders' patterns become (no corrected example attached).
REFUND_FEEDBACK = "- Refund amount included the shipping costs."
TONE_FEEDBACK = "- The reply was rude to an upset customer."
