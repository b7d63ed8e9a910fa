"""The SDK's span marks, and ``PromptSpanProcessor`` carrying them to spans started beneath."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from service.sdk import Resolution
from service.sdk._otel import mark_current_span, span_marks
from service.sdk.otel import PromptSpanProcessor

CANARY = Resolution("support/triage", 2, "T {{ x }}", ("x",), deployment="dep-1", arm="c1",
                    step=1)


def _provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(PromptSpanProcessor())
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider, memory


def test_a_canary_resolution_marks_prompt_version_arm_step_and_subject() -> None:
    assert span_marks(CANARY, "user-7", "exec-1") == {
        "gen_ai.prompt.name": "support/triage", "gen_ai.prompt.version": "2",
        "promptd.deployment.id": "dep-1", "promptd.deployment.arm": "c1",
        "promptd.deployment.step": 1, "promptd.subject": "user-7",
        "promptd.execution.id": "exec-1"}
    fallback = Resolution("support/triage", None, "T", (), from_fallback=True)
    assert span_marks(fallback, "user-7") == {}  # no version to credit: nothing to attribute


def test_spans_started_beneath_a_marked_span_carry_its_marks() -> None:
    provider, memory = _provider()
    tracer = provider.get_tracer("agent")
    with tracer.start_as_current_span("triage"):
        mark_current_span(CANARY, "user-7")
        with tracer.start_as_current_span("chat"), tracer.start_as_current_span("http"):
            pass
        with tracer.start_as_current_span("other", attributes={
                "gen_ai.prompt.name": "support/other", "gen_ai.prompt.version": "1"}):
            pass
    spans = {s.name: s.attributes for s in memory.get_finished_spans()}
    for name in ("chat", "http"):
        assert spans[name]["promptd.deployment.arm"] == "c1", name
        assert spans[name]["promptd.subject"] == "user-7", name
    assert spans["other"]["gen_ai.prompt.name"] == "support/other"  # its own prompt stands
    assert "promptd.deployment.arm" not in spans["other"]
    provider.shutdown()


def test_marking_without_a_recording_span_does_nothing() -> None:
    assert trace.get_current_span() is trace.INVALID_SPAN
    mark_current_span(CANARY, "user-7")  # no span, no error
