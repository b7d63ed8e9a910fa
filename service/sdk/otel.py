"""``PromptSpanProcessor``: promptd's marks reach the spans started beneath the marked one.

Optional, and the only SDK module that needs ``opentelemetry-sdk``. Without it the daemon
still attributes a model-call span to the prompt marked on its nearest ancestor, as long as
both arrive in the same export request; with it, every span started under a marked span
carries the marks itself, so the attribution survives however the exporter batches::

    provider.add_span_processor(PromptSpanProcessor())
"""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from ._otel import MARKS, PROMPT_NAME


class PromptSpanProcessor(SpanProcessor):
    """Copy promptd's marks from a span's parent onto the span when it starts."""

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        """Copy the parent's marks unless the span names a prompt of its own."""
        parent = trace.get_current_span(parent_context)
        attributes = getattr(parent, "attributes", None)
        if not attributes or PROMPT_NAME not in attributes:
            return
        if span.attributes and PROMPT_NAME in span.attributes:
            return
        span.set_attributes({k: attributes[k] for k in MARKS if k in attributes})

    def on_end(self, span: ReadableSpan) -> None:
        """Nothing to do when a span ends."""
