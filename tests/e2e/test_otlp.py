"""OpenTelemetry's own SDK and OTLP/HTTP exporters talk to a real daemon on loopback.

Spans go through ``BatchSpanProcessor`` and the official exporters (protobuf, JSON; plain and
gzip), are stored as executions, and survive the exporter's retries without duplicates.
"""

from __future__ import annotations

import gzip
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)

from tests.e2e.otlp_clients import Agent, agent_provider, answer_losing_proxy, exporter
from tests.support import LiveDaemon, live_daemon

PROMPT = "support/triage"


def _chat(agent: Agent, n: int, *, prompt: str = PROMPT, version: str = "1",
          subject: str = "user") -> None:
    tracer = agent.provider.get_tracer("agent")
    for i in range(n):
        with tracer.start_as_current_span("chat gpt-4o-mini", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.prompt.name": prompt, "gen_ai.prompt.version": version,
                "gen_ai.usage.input_tokens": 100 + i, "gen_ai.usage.output_tokens": 10,
                "session.id": f"{subject}-{i}"}):
            pass


def _executions(live: LiveDaemon) -> list[dict[str, Any]]:
    page = live.client().get("/v1/events", params={"type": "execution", "limit": 10_000})
    return [e for e in page.json()["events"]]


def _span_ids(agent: Agent) -> set[str]:
    return {f"{s.context.trace_id:032x}:{s.context.span_id:016x}"
            for s in agent.memory.get_finished_spans()}


def _otlp_spans(live: LiveDaemon, result: str, reason: str) -> float:
    value = live.daemon.metrics.registry.get_sample_value(
        "promptd_otlp_spans_total", {"result": result, "reason": reason})
    return value or 0.0


@pytest.mark.parametrize(("encoding", "compressed"),
                         [("protobuf", False), ("protobuf", True), ("json", False),
                          ("json", True)])
def test_the_official_exporters_spans_arrive_as_executions(
        live: LiveDaemon, encoding: str, compressed: bool) -> None:
    live.create_prompt()
    agent = agent_provider(exporter(live.url, live.issue("agent"), encoding=encoding,
                                    gzip=compressed))
    _chat(agent, 20)
    agent.flush()
    stored = _executions(live)
    assert {e["event_id"] for e in stored} == _span_ids(agent)
    by_id = {e["event_id"]: e["payload"] for e in stored}
    for span in agent.memory.get_finished_spans():
        p = by_id[f"{span.context.trace_id:032x}:{span.context.span_id:016x}"]
        assert p["input_tokens"] == span.attributes["gen_ai.usage.input_tokens"]
        assert p["latency_ms"] == pytest.approx((span.end_time - span.start_time) / 1e6)
        assert p["subject"] == span.attributes["session.id"] and p["success"] is True
    assert _otlp_spans(live, "mapped", "execution") == 20
    agent.provider.shutdown()


def test_an_exporter_retry_after_a_lost_answer_stores_nothing_twice(live: LiveDaemon) -> None:
    live.create_prompt()
    with answer_losing_proxy(live.url) as proxy:
        agent = agent_provider(exporter(proxy.url, live.issue("agent"), gzip=True))
        proxy.drop_next = 1
        _chat(agent, 30)
        agent.flush()
        agent.provider.shutdown()
    first, second = proxy.answers  # the lost answer, then the exporter's retry
    assert (first.delivered, second.delivered) == (False, True)
    assert first.status == second.status == 200
    assert sorted(e["event_id"] for e in _executions(live)) == sorted(_span_ids(agent))
    assert live.daemon.metrics.registry.get_sample_value(
        "promptd_events_ingested_total", {"type": "execution", "result": "duplicate"}) == 30


def test_unknown_prompts_are_rejected_in_partial_success_and_the_rest_is_stored(
        live: LiveDaemon) -> None:
    live.create_prompt()
    with answer_losing_proxy(live.url) as proxy:
        agent = agent_provider(exporter(proxy.url, live.issue("agent")))
        _chat(agent, 5)
        _chat(agent, 3, prompt="support/unknown")
        _chat(agent, 2, version="7")
        agent.provider.get_tracer("agent").start_span("GET /orders").end()
        agent.flush()
        agent.provider.shutdown()
    (answer,) = proxy.answers
    assert answer.status == 200 and answer.headers["content-type"] == "application/x-protobuf"
    response = ExportTraceServiceResponse.FromString(answer.body)
    assert response.partial_success.rejected_spans == 5
    assert "unknown prompt 'support/unknown'" in response.partial_success.error_message
    assert "has no version 7" in response.partial_success.error_message
    assert len(_executions(live)) == 5
    assert _otlp_spans(live, "rejected", "unknown_prompt") == 3
    assert _otlp_spans(live, "rejected", "unknown_version") == 2
    assert _otlp_spans(live, "ignored", "not_model_call") == 1


def test_a_json_export_is_answered_in_json(live: LiveDaemon) -> None:
    live.create_prompt()
    with answer_losing_proxy(live.url) as proxy:
        agent = agent_provider(exporter(proxy.url, live.issue("agent"), encoding="json"))
        _chat(agent, 2, prompt="support/unknown")
        agent.flush()
        agent.provider.shutdown()
    (answer,) = proxy.answers
    assert answer.headers["content-type"] == "application/json"
    import json

    partial = json.loads(answer.body)["partialSuccess"]
    assert partial["rejectedSpans"] == "2" and "support/unknown" in partial["errorMessage"]


def test_other_content_types_are_415_and_bodies_over_the_limit_are_413_even_gzipped(
        tmp_path: Path) -> None:
    with live_daemon(tmp_path, max_body_bytes=65_536) as live:
        agent = httpx.Client(base_url=live.url, timeout=30,
                             headers={"Authorization": f"Bearer {live.issue('agent')}"})
        with agent:
            r = agent.post("/v1/traces", content=b"x", headers={"content-type": "text/plain"})
            assert r.status_code == 415
            r = agent.post("/v1/traces", content=b"{}", headers={
                "content-type": "application/json", "content-encoding": "br"})
            assert r.status_code == 415
            bomb = gzip.compress(b"{" + b" " * 10_000_000 + b"}")  # 10 MB in ~10 kB
            assert len(bomb) < 65_536
            r = agent.post("/v1/traces", content=bomb, headers={
                "content-type": "application/json", "content-encoding": "gzip"})
            assert r.status_code == 413 and "decompressed" in r.json()["error"]["message"]
            r = agent.post("/v1/traces", content=b"\x00" * 70_000,
                           headers={"content-type": "application/x-protobuf"})
            assert r.status_code == 413
            r = agent.post("/v1/traces", content=b"\xff\xff\xff",
                           headers={"content-type": "application/x-protobuf"})
            assert r.status_code == 400
            r = agent.post("/v1/traces", content=gzip.compress(b"{}")[:-4], headers={
                "content-type": "application/json", "content-encoding": "gzip"})
            assert r.status_code == 400
        r = httpx.post(f"{live.url}/v1/traces", content=b"{}",
                       headers={"content-type": "application/json"})
        assert r.status_code == 401


def test_a_full_writer_queue_answers_503_with_retry_after_and_the_exporters_lose_nothing(
        tmp_path: Path) -> None:
    with live_daemon(tmp_path, writer_queue_max=1) as live:
        live.create_prompt()
        token = live.issue("agent")
        agents = [agent_provider(exporter(live.url, token)) for _ in range(12)]
        start = threading.Barrier(len(agents))

        def burst(agent: Agent) -> None:
            start.wait()
            for _ in range(4):
                _chat(agent, 128)
                agent.flush()

        threads = [threading.Thread(target=burst, args=(a,)) for a in agents]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        busy = live.daemon.metrics.registry.get_sample_value(
            "promptd_http_requests_total", {"route": "/v1/traces", "method": "POST",
                                            "code": "503"})
        assert busy, "12 concurrent exporters never overflowed a one-request queue"
        expected = set().union(*(_span_ids(a) for a in agents))
        stored = [e["event_id"] for e in _executions(live)]
        assert len(stored) == len(set(stored)) and set(stored) == expected
        for a in agents:
            a.provider.shutdown()


def test_the_price_table_gives_each_execution_its_cost(tmp_path: Path) -> None:
    prices = {"gpt-4o-mini": {"input": 0.15, "output": 0.6}}
    with live_daemon(tmp_path, otlp_prices=prices) as live:
        live.create_prompt()
        agent = agent_provider(exporter(live.url, live.issue("agent")))
        _chat(agent, 3)
        agent.flush()
        agent.provider.shutdown()
        costs = sorted(e["payload"]["cost_usd"] for e in _executions(live))
    assert costs == pytest.approx([(tokens * 0.15 + 10 * 0.6) / 1e6 for tokens in (100, 101, 102)])


def test_spans_older_than_the_accepted_window_are_rejected_like_old_events(
        live: LiveDaemon) -> None:
    live.create_prompt()
    with answer_losing_proxy(live.url) as proxy:
        tracer_agent = agent_provider(exporter(proxy.url, live.issue("agent")))
        tracer = tracer_agent.provider.get_tracer("agent")
        _chat(tracer_agent, 2)  # now: stored
        forty_days_ago = time.time_ns() - 40 * 86_400 * 10**9
        for i in range(3):  # an exporter replaying a backlog from last month
            span = tracer.start_span("chat gpt-4o-mini", start_time=forty_days_ago + i,
                                     attributes={"gen_ai.operation.name": "chat",
                                                 "gen_ai.prompt.name": PROMPT,
                                                 "gen_ai.prompt.version": "1"})
            span.end(end_time=forty_days_ago + i + 10**6)
        tracer_agent.flush()
        tracer_agent.provider.shutdown()
    (answer,) = proxy.answers
    response = ExportTraceServiceResponse.FromString(answer.body)
    assert response.partial_success.rejected_spans == 3
    assert "outside the accepted window" in response.partial_success.error_message
    assert len(_executions(live)) == 2
    assert _otlp_spans(live, "rejected", "out_of_window") == 3
