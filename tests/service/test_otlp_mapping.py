"""The span -> event mapping of ``POST /v1/traces``, on spans as each vendor's SDK records them.

Each key set below is the one the vendor's instrumentation writes (official OpenTelemetry
GenAI conventions and ``opentelemetry-instrumentation-openai-v2``; Langfuse v3's
``langfuse.observation.*``; OpenLLMetry's ``traceloop.*`` with the legacy ``prompt_tokens``
names; OpenInference's ``llm.*`` and ``openinference.span.kind``). The spans are real
OpenTelemetry SDK spans, encoded by the OTLP exporters' own encoders, protobuf and JSON, and
decoded by promptd's decoders: the test sees what the route sees.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.json.common.trace_encoder import encode_spans as encode_json
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as encode_pb
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode
from pydantic import ValidationError

from service.contract import CorrectionIn
from service.contract.otlp import (
    Catalogue,
    Price,
    TraceMapping,
    decode_json,
    decode_protobuf,
    map_spans,
    price_of,
)

PROMPT, TEMPLATE = "support/triage", "Answer the ticket {{ ticket }}."
CATALOGUE = Catalogue(prompts={PROMPT}, versions={(PROMPT, 1), (PROMPT, 2)},
                      templates={TEMPLATE: (PROMPT, 2)})
NS = 1_000_000  # nanoseconds per millisecond

OFFICIAL = {  # opentelemetry-instrumentation-openai-v2 (v1.30 conventions) + the prompt keys
    "gen_ai.operation.name": "chat", "gen_ai.system": "openai",
    "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.response.id": "chatcmpl-1", "gen_ai.usage.input_tokens": 420,
    "gen_ai.usage.output_tokens": 96, "gen_ai.response.finish_reasons": ("stop",),
    "server.address": "api.openai.com", "gen_ai.prompt.name": PROMPT,
    "gen_ai.prompt.version": "1", "gen_ai.conversation.id": "conv-7",
}
LANGFUSE = {  # Langfuse v3 SDK: a generation linked to a managed prompt
    "langfuse.observation.type": "generation", "langfuse.observation.model.name": "gpt-4o",
    "langfuse.observation.usage_details": json.dumps({"input": 50, "output": 7, "total": 57}),
    "langfuse.observation.prompt.name": PROMPT, "langfuse.observation.prompt.version": 2,
    "langfuse.session.id": "sess-9", "langfuse.observation.level": "DEFAULT",
}
OPENLLMETRY = {  # Traceloop's OpenLLMetry: llm.request.type, legacy token names, prompt registry
    "llm.request.type": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.prompt_tokens": 31, "gen_ai.usage.completion_tokens": 12,
    "llm.usage.total_tokens": 43, "traceloop.prompt.key": PROMPT,
    "traceloop.prompt.version": 1, "traceloop.prompt.version_hash": "abc", "user.id": "u-3",
}
OPENINFERENCE = {  # Arize OpenInference: LLM span kind, template text and a free-form version
    "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-mini",
    "llm.token_count.prompt": 18, "llm.token_count.completion": 4,
    "llm.token_count.total": 22, "llm.prompt_template.template": TEMPLATE,
    "llm.prompt_template.version": "v2.0",
    "llm.prompt_template.variables": json.dumps({"ticket": "T-1"}), "session.id": "s-1",
}


class Recorder:
    """A real SDK tracer whose finished spans are kept in memory."""

    def __init__(self) -> None:
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create({"service.name": "agent"}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.tracer = self.provider.get_tracer("recorded")
        self.clock = 1_700_000_000_000 * NS  # in the past: open spans end "now"

    def span(self, name: str, attributes: Mapping[str, Any], *, ms: float = 250.0,
             parent: trace.Span | None = None, error: bool = False,
             events: tuple[tuple[str, Mapping[str, Any]], ...] = ()) -> trace.Span:
        """Record one finished span lasting ``ms`` milliseconds."""
        context = trace.set_span_in_context(parent) if parent is not None else None
        span = self.tracer.start_span(name, context=context, attributes=dict(attributes),
                                      start_time=self.clock)
        for event_name, event_attributes in events:
            span.add_event(event_name, dict(event_attributes))
        if error:
            span.set_status(Status(StatusCode.ERROR, "boom"))
        self.clock += int(ms * NS)
        span.end(end_time=self.clock)
        return span

    def open(self, name: str, attributes: Mapping[str, Any]) -> trace.Span:
        """Start a span the caller ends (a parent of recorded ones)."""
        return self.tracer.start_span(name, attributes=dict(attributes), start_time=self.clock)

    def finished(self) -> tuple[ReadableSpan, ...]:
        """Return every span finished so far."""
        return self.memory.get_finished_spans()


@pytest.fixture
def rec() -> Iterator[Recorder]:
    recorder = Recorder()
    yield recorder
    recorder.provider.shutdown()


def _mapped(rec: Recorder, prices: Mapping[str, Price] | None = None) -> TraceMapping:
    """Return the mapping of everything recorded, via the protobuf encoding."""
    body = encode_pb(rec.finished()).SerializeToString()
    return map_spans(decode_protobuf(body), CATALOGUE, prices)


def _ids(span: trace.Span) -> str:
    ctx = span.get_span_context()
    return f"{ctx.trace_id:032x}:{ctx.span_id:016x}"


def test_official_gen_ai_chat_span_becomes_an_execution_with_tokens_latency_model_and_cost(
        rec: Recorder) -> None:
    span = rec.span("chat gpt-4o-mini", OFFICIAL, ms=812.5)
    prices = {"gpt-4o-mini": Price(input=0.15, output=0.6), "gpt-4o": Price(2.5, 10.0)}
    out = _mapped(rec, prices)
    (e,) = out.executions
    assert (e.event_id, e.prompt, e.version) == (_ids(span), PROMPT, 1)
    assert e.latency_ms == pytest.approx(812.5)
    assert (e.input_tokens, e.output_tokens, e.success) == (420, 96, True)
    assert e.model == "gpt-4o-mini-2024-07-18"  # the response's model before the request's
    assert e.cost_usd == pytest.approx((420 * 0.15 + 96 * 0.6) / 1e6)  # longest prefix entry
    assert e.subject == "conv-7" and e.metadata["service"] == "agent"
    assert out.spans == {("mapped", "execution"): 1} and out.message() == ""


def test_langfuse_generation_names_its_prompt_and_usage_details(rec: Recorder) -> None:
    rec.span("generation", LANGFUSE)
    (e,) = _mapped(rec).executions
    assert (e.prompt, e.version, e.model) == (PROMPT, 2, "gpt-4o")
    assert (e.input_tokens, e.output_tokens, e.subject) == (50, 7, "sess-9")


def test_openllmetry_prompt_key_and_legacy_token_names(rec: Recorder) -> None:
    rec.span("openai.chat", OPENLLMETRY)
    (e,) = _mapped(rec).executions
    assert (e.prompt, e.version, e.input_tokens, e.output_tokens) == (PROMPT, 1, 31, 12)
    assert e.subject == "u-3" and e.cost_usd is None  # no price configured: no cost


def test_openinference_llm_span_is_identified_by_its_registered_template_text(
        rec: Recorder) -> None:
    rec.span("ChatCompletion", OPENINFERENCE)
    rec.span("ChatCompletion", {**OPENINFERENCE, "llm.prompt_template.template": "other text"})
    out = _mapped(rec)
    (e,) = out.executions
    assert (e.prompt, e.version, e.model, e.input_tokens) == (PROMPT, 2, "gpt-4o-mini", 18)
    assert out.spans[("ignored", "no_prompt")] == 1  # an unregistered template names nothing


def test_the_gen_ai_keys_win_over_langfuse_and_langfuse_over_openllmetry(rec: Recorder) -> None:
    rec.span("a", {**OPENLLMETRY, **LANGFUSE, "gen_ai.prompt.name": PROMPT,
                   "gen_ai.prompt.version": 1, "traceloop.prompt.version": 2})
    rec.span("b", {**OPENLLMETRY, **LANGFUSE, "traceloop.prompt.version": 1})
    first, second = _mapped(rec).executions
    assert (first.version, second.version) == (1, 2)


def test_a_model_call_inherits_prompt_and_arm_from_its_nearest_marked_ancestor(
        rec: Recorder) -> None:
    outer = rec.open("handle", {"gen_ai.prompt.name": PROMPT, "gen_ai.prompt.version": "1"})
    agent = rec.tracer.start_span("answer", context=trace.set_span_in_context(outer),
                                  attributes={"gen_ai.prompt.name": PROMPT,
                                              "gen_ai.prompt.version": "2",
                                              "promptd.deployment.id": "dep-1",
                                              "promptd.deployment.arm": "c1",
                                              "promptd.deployment.step": 1,
                                              "promptd.subject": "user-42"})
    unmarked = {k: v for k, v in OFFICIAL.items() if not k.startswith("gen_ai.prompt")}
    chat = rec.span("chat", unmarked, parent=agent)
    agent.end()
    outer.end()
    out = _mapped(rec)
    (e,) = out.executions
    assert e.event_id == _ids(chat)
    assert (e.version, e.deployment, e.arm, e.step, e.subject) == (2, "dep-1", "c1", 1, "user-42")
    assert out.spans[("ignored", "not_model_call")] == 2


def test_a_model_call_naming_its_own_prompt_keeps_the_arm_of_the_same_prompt_around_it(
        rec: Recorder) -> None:
    agent = rec.open("answer", {"gen_ai.prompt.name": PROMPT, "gen_ai.prompt.version": "2",
                                "promptd.deployment.id": "dep-1",
                                "promptd.deployment.arm": "c1"})
    rec.span("chat", {**OFFICIAL, "gen_ai.prompt.version": "2"}, parent=agent)
    rec.span("chat", {**OFFICIAL, "gen_ai.prompt.version": "1"}, parent=agent)
    agent.end()
    same, other = _mapped(rec).executions
    assert (same.deployment, same.arm) == ("dep-1", "c1")
    assert (other.deployment, other.arm) == (None, None)  # another version: not that arm


def test_spans_without_prompt_identity_are_ignored_and_counted_not_rejected(
        rec: Recorder) -> None:
    unmarked = {k: v for k, v in OFFICIAL.items() if not k.startswith("gen_ai.prompt")}
    rec.span("chat", unmarked)
    rec.span("GET /health", {"http.request.method": "GET"})
    rec.span("embeddings", {**OFFICIAL, "gen_ai.operation.name": "embeddings"})
    out = _mapped(rec)
    assert out.executions == [] and out.rejected == 0
    assert out.spans == {("ignored", "no_prompt"): 1, ("ignored", "not_model_call"): 2}
    assert "1 model-call spans carried no prompt identity" in out.message()


def test_unknown_prompts_and_versions_are_rejected_and_named_in_the_message(
        rec: Recorder) -> None:
    rec.span("chat", {**OFFICIAL, "gen_ai.prompt.name": "support/unknown"})
    rec.span("chat", {**OFFICIAL, "gen_ai.prompt.version": "9"})
    rec.span("chat", {**OFFICIAL, "gen_ai.prompt.version": "latest"})
    rec.span("chat", OFFICIAL)
    out = _mapped(rec)
    assert len(out.executions) == 1 and out.rejected == 3
    assert out.spans == {("mapped", "execution"): 1, ("rejected", "unknown_prompt"): 1,
                         ("rejected", "unknown_version"): 1, ("rejected", "missing_version"): 1}
    assert "'support/unknown'" in out.message() and "no version 9" in out.message()


def test_error_status_or_error_type_makes_a_failed_execution(rec: Recorder) -> None:
    rec.span("chat", OFFICIAL, error=True)
    rec.span("chat", {**OFFICIAL, "error.type": "RateLimitError"})
    rec.span("generation", {**LANGFUSE, "langfuse.observation.level": "ERROR"})
    rec.span("chat", OFFICIAL)
    outcomes = [(e.success, e.error_type) for e in _mapped(rec).executions]
    assert outcomes == [(False, "span_status_error"), (False, "RateLimitError"),
                        (False, "span_status_error"), (True, None)]


def test_a_failing_evaluation_with_an_explanation_becomes_a_correction_and_scores_the_run(
        rec: Recorder) -> None:
    chat = rec.span("chat", OFFICIAL, events=(
        ("gen_ai.evaluation.result", {"gen_ai.evaluation.name": "format",
                                      "gen_ai.evaluation.score.value": 0.2,
                                      "gen_ai.evaluation.score.label": "fail",
                                      "gen_ai.evaluation.explanation": "date not ISO 8601"}),
        ("gen_ai.evaluation.result", {"gen_ai.evaluation.name": "tone",
                                      "gen_ai.evaluation.score.value": 0.6,
                                      "gen_ai.evaluation.score.label": "pass",
                                      "gen_ai.evaluation.explanation": "polite"}),
        ("gen_ai.evaluation.result", {"gen_ai.evaluation.name": "length",
                                      "gen_ai.evaluation.score.label": "fail"}),
    ))
    out = _mapped(rec)
    (e,) = out.executions
    assert e.score == pytest.approx(0.4)  # the mean of the scores in [0, 1]
    (c,) = out.corrections  # passing, or failing without an explanation: no correction
    assert (c.execution_id, c.prompt, c.version) == (_ids(chat), PROMPT, 1)
    assert (c.category, c.reason) == ("format", "date not ISO 8601")
    assert out.evaluations == {"score": 2, "correction": 1}


def test_an_unlabelled_low_score_fails_and_a_high_one_passes(rec: Recorder) -> None:
    for score in (0.49, 0.5):
        rec.span("chat", {**OFFICIAL, "gen_ai.evaluation.name": "judge",
                          "gen_ai.evaluation.score.value": score,
                          "gen_ai.evaluation.explanation": "why"})
    out = _mapped(rec)
    assert [c.category for c in out.corrections] == ["judge"]
    assert out.corrections[0].execution_id == out.executions[0].event_id


def test_an_evaluation_on_the_agent_span_judges_its_last_model_call(rec: Recorder) -> None:
    agent = rec.open("answer", {"gen_ai.prompt.name": PROMPT, "gen_ai.prompt.version": "1"})
    unmarked = {k: v for k, v in OFFICIAL.items() if not k.startswith("gen_ai.prompt")}
    rec.span("chat draft", unmarked, parent=agent)
    final = rec.span("chat final", unmarked, parent=agent)
    agent.add_event("gen_ai.evaluation.result", {
        "gen_ai.evaluation.name": "correctness", "gen_ai.evaluation.score.label": "incorrect",
        "gen_ai.evaluation.explanation": "wrong refund amount"})
    agent.end()
    (c,) = _mapped(rec).corrections
    assert c.execution_id == _ids(final) and c.reason == "wrong refund amount"


def test_an_evaluation_span_beneath_a_model_call_judges_that_call(rec: Recorder) -> None:
    chat = rec.span("chat", OFFICIAL)
    rec.span("judge", {"gen_ai.evaluation.name": "grounded",
                       "gen_ai.evaluation.score.label": "fail",
                       "gen_ai.evaluation.explanation": "cites no source"}, parent=chat)
    (c,) = _mapped(rec).corrections
    assert c.execution_id == _ids(chat)


def test_model_calls_under_an_execution_the_sdk_records_are_not_counted_twice(
        rec: Recorder) -> None:
    agent = rec.open("answer", {"gen_ai.prompt.name": PROMPT, "gen_ai.prompt.version": "1",
                                "promptd.execution.id": "0190b6e4-0000-7000-8000-00000000000a"})
    unmarked = {k: v for k, v in OFFICIAL.items() if not k.startswith("gen_ai.prompt")}
    rec.span("chat", unmarked, parent=agent)
    agent.add_event("gen_ai.evaluation.result", {
        "gen_ai.evaluation.name": "format", "gen_ai.evaluation.score.label": "fail",
        "gen_ai.evaluation.explanation": "not JSON"})
    agent.end()
    out = _mapped(rec)
    assert out.executions == [] and out.spans[("ignored", "recorded_by_sdk")] == 1
    (c,) = out.corrections  # the judgement still reaches the execution the SDK recorded
    assert c.execution_id == "0190b6e4-0000-7000-8000-00000000000a"


def test_protobuf_and_json_encodings_give_the_same_events(rec: Recorder) -> None:
    agent = rec.open("answer", {"gen_ai.prompt.name": PROMPT, "gen_ai.prompt.version": "2",
                                "promptd.deployment.id": "dep-1",
                                "promptd.deployment.arm": "control"})
    rec.span("chat", {**OFFICIAL, "gen_ai.prompt.version": "2"}, parent=agent, error=True,
             events=(("gen_ai.evaluation.result", {"gen_ai.evaluation.name": "f",
                                                   "gen_ai.evaluation.score.value": 0.1,
                                                   "gen_ai.evaluation.explanation": "x"}),))
    rec.span("generation", LANGFUSE)
    rec.span("ChatCompletion", OPENINFERENCE)
    agent.end()
    from_pb = _mapped(rec)
    body = encode_json(rec.finished()).to_json().encode()
    from_json = map_spans(decode_json(body), CATALOGUE)
    assert from_json.executions == from_pb.executions and len(from_pb.executions) == 3
    assert from_json.corrections == from_pb.corrections and len(from_pb.corrections) == 1
    assert from_json.spans == from_pb.spans


def test_attributes_of_an_unusual_type_or_zero_decode_as_the_sdk_recorded_them(
        rec: Recorder) -> None:
    unusual = {"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 0,
               "gen_ai.usage.output_tokens": "12", "promptd.deployment.step": 1.0,
               "gen_ai.request.model": "", "promptd.deployment.id": 5,
               "gen_ai.prompt.name": PROMPT, "gen_ai.prompt.version": 2,
               "gen_ai.evaluation.score.value": 1, "session.id": True,
               "gen_ai.response.finish_reasons": ("stop",), "unrelated.key": "x"}
    rec.span("chat", unusual)
    body = encode_pb(rec.finished()).SerializeToString()
    (span,) = decode_protobuf(body)
    expected = {k: v for k, v in unusual.items()
                if k not in ("gen_ai.response.finish_reasons", "unrelated.key")}
    assert span.attributes == expected
    assert [type(v) for v in span.attributes.values()] == [type(v) for v in expected.values()]
    (json_span,) = decode_json(encode_json(rec.finished()).to_json().encode())
    assert json_span.attributes == expected


def test_a_loop_of_parent_ids_ends_the_walk_instead_of_hanging() -> None:
    from service.contract.otlp import Span

    a, b = "a" * 16, "b" * 16
    spans = [Span("1" * 32, a, b, "x", 0, 1, False, {"gen_ai.operation.name": "chat"}),
             Span("1" * 32, b, a, "y", 0, 1, False, {})]
    out = map_spans(spans, CATALOGUE)
    assert out.spans == {("ignored", "no_prompt"): 1, ("ignored", "not_model_call"): 1}


def test_a_dated_model_takes_the_longest_price_entry_it_starts_with() -> None:
    prices = {"gpt-4o": Price(2.5, 10.0), "gpt-4o-mini": Price(0.15, 0.6)}
    assert price_of("gpt-4o-mini-2024-07-18", prices) == Price(0.15, 0.6)
    assert price_of("gpt-4o-2024-08-06", prices) == Price(2.5, 10.0)
    assert price_of("claude-3", prices) is None


def test_a_correction_may_name_its_execution_by_trace_and_span_id() -> None:
    trace_id, span_id = "0AF7651916CD43DD8448EB211C80319C", "B7AD6B7169203331"
    c = CorrectionIn(trace_id=trace_id, span_id=span_id, prompt=PROMPT, version=1,
                     category="format")
    assert c.execution_id == "0af7651916cd43dd8448eb211c80319c:b7ad6b7169203331"
    with pytest.raises(ValidationError, match="give both"):
        CorrectionIn(trace_id=trace_id, prompt=PROMPT, version=1, category="format")
    with pytest.raises(ValidationError, match="is not the span's"):
        CorrectionIn(trace_id=trace_id, span_id=span_id, execution_id="other-execution",
                     prompt=PROMPT, version=1, category="format")
    with pytest.raises(ValidationError, match="names its execution"):
        CorrectionIn(prompt=PROMPT, version=1, category="format")
