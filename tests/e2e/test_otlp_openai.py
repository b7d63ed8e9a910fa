"""The official OpenAI instrumentation's spans, for real chat calls, feed promptd's loop.

The ``openai`` client calls the OpenAI-compatible stub on loopback; the official
``opentelemetry-instrumentation-openai-v2`` records each call as a span; the agent resolves
its prompt through promptd's SDK (which names the prompt and arm on the agent's span) and
exports with the OTLP exporter. Nothing is posted to ``/v1/events``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from opentelemetry import trace
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

from service.sdk import PromptdClient
from tests.e2e.otlp_clients import Agent, agent_provider, exporter
from tests.improver.llm_stub import LLMStub, serve_llm_stub
from tests.support import LiveDaemon

PROMPT = "support/triage"


@pytest.fixture(scope="module")
def stub() -> Iterator[LLMStub]:
    with serve_llm_stub() as s:
        yield s


@pytest.fixture
def agent(live: LiveDaemon) -> Iterator[tuple[Agent, str]]:
    """An agent tracer provider with the OpenAI client instrumented for it, and its token."""
    live.create_prompt()
    token = live.issue("agent")
    traced = agent_provider(exporter(live.url, token))
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=traced.provider)
    try:
        yield traced, token
    finally:
        instrumentor.uninstrument()
        traced.provider.shutdown()


def _openai(stub: LLMStub) -> openai.OpenAI:
    return openai.OpenAI(base_url=stub.base_url, api_key="stub", max_retries=0,
                         http_client=httpx.Client(trust_env=False))


def _chat_spans(agent: Agent) -> dict[str, Any]:
    return {f"{s.context.trace_id:032x}:{s.context.span_id:016x}": s
            for s in agent.memory.get_finished_spans()
            if s.attributes.get("gen_ai.operation.name") == "chat"}


def _events(live: LiveDaemon, kind: str) -> dict[str, dict[str, Any]]:
    page = live.client().get("/v1/events", params={"type": kind, "limit": 10_000}).json()
    return {e["event_id"]: e["payload"] for e in page["events"]}


def test_instrumented_chat_calls_arrive_as_executions_with_tokens_and_latency(
        live: LiveDaemon, stub: LLMStub, agent: tuple[Agent, str]) -> None:
    traced, token = agent
    tracer = traced.provider.get_tracer("support-bot")
    llm = _openai(stub)
    with PromptdClient(live.url, token=token) as pd:
        for i in range(6):
            with tracer.start_as_current_span("triage ticket"):
                prompt = pd.resolve(PROMPT, subject=f"user-{i}")
                llm.chat.completions.create(model="gpt-4o-mini", messages=[
                    {"role": "user", "content": prompt.render(ticket=f"T-{i}", customer="Ada")}])
    traced.flush()
    chats = _chat_spans(traced)
    executions = _events(live, "execution")
    assert set(executions) == set(chats) and len(chats) == 6
    for event_id, span in chats.items():
        p = executions[event_id]
        assert (p["prompt"], p["version"], p["model"]) == (PROMPT, 1, "gpt-4o-mini")
        assert p["input_tokens"] == span.attributes["gen_ai.usage.input_tokens"] > 0
        assert p["output_tokens"] == span.attributes["gen_ai.usage.output_tokens"] > 0
        assert p["latency_ms"] == pytest.approx((span.end_time - span.start_time) / 1e6)
        assert p["success"] is True and p["subject"].startswith("user-")


def test_evaluations_become_corrections_and_people_correct_by_span_id(
        live: LiveDaemon, stub: LLMStub, agent: tuple[Agent, str]) -> None:
    traced, token = agent
    tracer = traced.provider.get_tracer("support-bot")
    llm = _openai(stub)
    with PromptdClient(live.url, token=token) as pd:
        for i in range(2):
            with tracer.start_as_current_span("triage ticket") as span:
                prompt = pd.resolve(PROMPT, subject=f"user-{i}")
                reply = llm.chat.completions.create(model="gpt-4o-mini", messages=[
                    {"role": "user", "content": prompt.render(ticket="T", customer="Bo")}])
                verdict = "fail" if i == 0 else "pass"  # an LLM-as-judge, after the call
                span.add_event("gen_ai.evaluation.result", {
                    "gen_ai.evaluation.name": "format", "gen_ai.evaluation.score.label": verdict,
                    "gen_ai.evaluation.score.value": 0.0 if i == 0 else 1.0,
                    "gen_ai.evaluation.explanation": f"reply {reply.id} is not JSON"})
    traced.flush()
    chats = sorted(_chat_spans(traced).items(), key=lambda kv: kv[1].start_time)
    (judged, _), (passed, passed_span) = chats
    executions = _events(live, "execution")
    assert (executions[judged]["score"], executions[passed]["score"]) == (0.0, 1.0)
    (correction,) = _events(live, "correction").values()
    assert correction["execution_id"] == judged
    assert (correction["category"], correction["reason"]) == ("format", "reply chatcmpl-stub "
                                                                        "is not JSON")
    # A reviewer who only sees traces corrects the other call by its span.
    person = live.client(token).post("/v1/corrections", json={
        "trace_id": f"{passed_span.context.trace_id:032x}",
        "span_id": f"{passed_span.context.span_id:016x}", "prompt": PROMPT, "version": 1,
        "category": "tone", "reason": "too curt"})
    assert person.status_code == 200, person.text
    stored = _events(live, "correction")[person.json()["event_id"]]
    assert stored["execution_id"] == passed
    assert live.client().get(f"/v1/prompts/{PROMPT}").json()["versions"][0]["counts"][
        "corrections"] == 2


def test_a_canary_attributes_each_call_to_the_arm_the_sdk_assigned(
        live: LiveDaemon, stub: LLMStub, agent: tuple[Agent, str]) -> None:
    traced, token = agent
    admin = live.client()
    admin.post(f"/v1/prompts/{PROMPT}/versions", json={
        "template": "Answer {{ ticket }} for {{ customer }}, briefly."}).raise_for_status()
    deployment = admin.post("/v1/deployments", json={"prompt": PROMPT, "versions": [2],
                                                     "steps": [50, 100]})
    deployment.raise_for_status()
    tracer = traced.provider.get_tracer("support-bot")
    llm = _openai(stub)
    assigned: dict[str, tuple[int, str | None]] = {}
    with PromptdClient(live.url, token=token) as pd:
        for i in range(40):
            subject = f"user-{i}"
            with tracer.start_as_current_span("triage ticket"):
                prompt = pd.resolve(PROMPT, subject=subject)
                assigned[subject] = (prompt.version, prompt.arm)
                llm.chat.completions.create(model="gpt-4o-mini", messages=[
                    {"role": "user", "content": prompt.render(ticket="T", customer="Cy")}])
    traced.flush()
    assert {arm for _, arm in assigned.values()} == {"control", "c1"}  # both arms drawn
    executions = list(_events(live, "execution").values())
    assert len(executions) == 40
    for p in executions:
        assert (p["version"], p["arm"]) == assigned[p["subject"]]
        assert p["deployment"] == deployment.json()["deployment_id"] and p["step"] == 0
    spans = [s for s in traced.memory.get_finished_spans() if s.name == "triage ticket"]
    assert all(s.attributes["promptd.deployment.arm"] in ("control", "c1") for s in spans)
    # The canary's per-arm counts are what the daemon decides with.
    shown = live.client().get(f"/v1/deployments/{deployment.json()['deployment_id']}").json()
    counted = {a["arm"]: a["executions"] for a in shown["arms_stats"]}
    assert counted == {arm: sum(1 for _, a in assigned.values() if a == arm)
                       for arm in ("control", "c1")}


def test_spans_of_a_run_the_sdk_records_itself_are_not_counted_twice(
        live: LiveDaemon, stub: LLMStub, agent: tuple[Agent, str]) -> None:
    traced, token = agent
    tracer = traced.provider.get_tracer("support-bot")
    llm = _openai(stub)
    with PromptdClient(live.url, token=token) as pd:
        with tracer.start_as_current_span("triage ticket"), \
                pd.execution(PROMPT, subject="user-1") as run:
            llm.chat.completions.create(model="gpt-4o-mini", messages=[
                {"role": "user", "content": run.render(ticket="T", customer="Di")}])
            run.success = True
        pd.flush(10)
    traced.flush()
    executions = _events(live, "execution")
    assert list(executions) == [run.event_id]  # the SDK's record, not the chat span too
    assert trace.get_current_span() is trace.INVALID_SPAN
