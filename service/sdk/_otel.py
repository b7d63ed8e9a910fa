"""Prompt identity on the agent's OpenTelemetry span, when the agent traces with OpenTelemetry.

OpenTelemetry is never a dependency of the SDK. An agent that traces has imported
``opentelemetry.trace`` itself, and only then can there be a current span to mark; otherwise
marking costs one dictionary lookup and imports nothing.

The attributes (``ops/OTLP.md`` has the table): ``gen_ai.prompt.name`` and
``gen_ai.prompt.version`` (OpenTelemetry's GenAI conventions, so any backend sees them), and
promptd's own ``promptd.deployment.id``, ``promptd.deployment.arm``,
``promptd.deployment.step`` and ``promptd.subject`` during a canary, and
``promptd.execution.id`` when ``execution()`` records the run itself (so the daemon does not
count the run's model-call spans a second time).
"""

from __future__ import annotations

import sys
from typing import Any

from ._log import EventLogger
from ._models import Resolution

log = EventLogger("promptd.sdk")

PROMPT_NAME = "gen_ai.prompt.name"
PROMPT_VERSION = "gen_ai.prompt.version"
DEPLOYMENT = "promptd.deployment.id"
ARM = "promptd.deployment.arm"
STEP = "promptd.deployment.step"
SUBJECT = "promptd.subject"
EXECUTION = "promptd.execution.id"
MARKS = (PROMPT_NAME, PROMPT_VERSION, DEPLOYMENT, ARM, STEP, SUBJECT, EXECUTION)


def span_marks(resolution: Resolution, subject: str | None,
               execution_id: str | None = None) -> dict[str, Any]:
    """Return the attributes that name ``resolution`` on a span (empty for a fallback)."""
    if resolution.version is None:
        return {}  # a fallback template: no version to credit, nothing to attribute
    marks: dict[str, Any] = {PROMPT_NAME: resolution.prompt,
                             PROMPT_VERSION: str(resolution.version)}
    if resolution.deployment is not None:
        marks[DEPLOYMENT] = resolution.deployment
        if resolution.arm is not None:
            marks[ARM] = resolution.arm
        if resolution.step is not None:
            marks[STEP] = resolution.step
    if subject is not None:
        marks[SUBJECT] = subject
    if execution_id is not None:
        marks[EXECUTION] = execution_id
    return marks


def mark_current_span(resolution: Resolution, subject: str | None,
                      execution_id: str | None = None) -> None:
    """Set ``resolution``'s identity and arm on the current span, if OpenTelemetry traces."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return
    try:
        span = trace.get_current_span()
        if span.is_recording():
            marks = span_marks(resolution, subject, execution_id)
            if marks:
                span.set_attributes(marks)
    except Exception as exc:  # the agent's tracing must never break its resolve
        log.warning("promptd.span_not_marked", error=repr(exc))
