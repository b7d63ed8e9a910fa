"""Benchmark of OTLP ingest: spans/s through ``POST /v1/traces`` against the same events
posted to ``POST /v1/events``, in one run of one ``promptd serve``.

Run: ``.venv/bin/python tests/perf/bench_otlp.py`` (about two minutes on 2 cores).

  (e) ``POST /v1/events``: the executions the spans become, 512 per request (JSON)
  (s) the same, 100 per request (what promptd's SDK sends), for scale
  (t) ``POST /v1/traces``: 512 spans per request (the BatchSpanProcessor's default batch),
      binary protobuf as ``opentelemetry-exporter-otlp-proto-http`` sends it   -> >= 0.8 x (e)

The spans are the official ``opentelemetry-instrumentation-openai-v2`` key set (a chat call
with model, token counts, finish reasons, server address) plus ``gen_ai.prompt.*``, recorded
with the real SDK and encoded by the exporter's own encoder once; the events are what the
mapping makes of them, so both routes store identical rows. Every request carries fresh
trace and span ids (patched into the encoded template: 24 random bytes per span), and the
events carry the same ``trace_id:span_id`` ids the spans would become, so both pay for the
same index inserts. Rounds alternate (e, s, t, e, s, t, ...) so both see the log grow alike;
closed-loop keep-alive clients from ``_load.py``. A missed target prints MISS, exit 1.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # run as a plain script: make ``tests.support`` importable

import httpx  # noqa: E402
from _load import LoadResult, http_request, launch, pooled, print_table, run_load  # noqa: E402
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

from service.contract.otlp import Catalogue, decode_protobuf, map_spans  # noqa: E402
from tests.support import PROMPTD, free_port  # noqa: E402

PROMPT = "bench/otlp"
TEMPLATE = "Triage the ticket {{ ticket }} for {{ customer }} and answer in one line."
BATCH = 512
SDK_BATCH = 100  # what promptd's own SDK posts per request (batch_size)
EVENTS, SDK_EVENTS, TRACES = ("(e) POST /v1/events  512 events",
                              "(s) POST /v1/events  100 events", "(t) POST /v1/traces  512 spans")
CLIENTS = 8
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
ROUND_S = 10.0
TARGET = 0.8
ATTRIBUTES = {
    "gen_ai.operation.name": "chat", "gen_ai.system": "openai",
    "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
    "gen_ai.response.id": "chatcmpl-AbCdEf0123456789", "gen_ai.response.finish_reasons": ("stop",),
    "gen_ai.usage.input_tokens": 420, "gen_ai.usage.output_tokens": 96,
    "server.address": "api.openai.com", "server.port": 443,
    "gen_ai.prompt.name": PROMPT, "gen_ai.prompt.version": "1", "session.id": "user-42",
}


def recorded_spans() -> bytes:
    """Return an encoded ExportTraceServiceRequest of BATCH chat spans from the real SDK."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("opentelemetry.instrumentation.openai_v2")
    # Recent: spans (and events) older than the daemon's accepted window are refused.
    start = time.time_ns() - 3_600 * 10**9
    for i in range(BATCH):
        span = tracer.start_span("chat gpt-4o-mini", attributes=ATTRIBUTES,
                                 start_time=start + i * 1_000_000)
        span.end(end_time=start + i * 1_000_000 + 812_500_000)
    body = encode_spans(memory.get_finished_spans()).SerializeToString()
    provider.shutdown()
    return body


class Patcher:
    """Fresh random ids into fixed offsets of an encoded template, per request."""

    def __init__(self, template: bytes, offsets: list[tuple[int, int]]) -> None:
        self.template, self.offsets = template, offsets

    def fill(self, values: list[bytes]) -> bytes:
        """Return the template with ``values[i]`` at ``offsets[i]``."""
        out = bytearray(self.template)
        for (at, size), value in zip(self.offsets, values, strict=True):
            out[at:at + size] = value
        return bytes(out)


def otlp_patcher(body: bytes) -> Patcher:
    """Return where each span's trace and span id sit in the protobuf body."""
    offsets: list[tuple[int, int]] = []
    for s in decode_protobuf(body):
        for hex_id in (s.trace_id, s.span_id):
            at = body.find(bytes.fromhex(hex_id))
            assert at >= 0 and body.count(bytes.fromhex(hex_id)) == 1
            offsets.append((at, len(hex_id) // 2))
    return Patcher(body, offsets)


def events_patcher(body: bytes, n: int) -> Patcher:
    """Return the /v1/events body of the first ``n`` executions the spans become, with the
    offsets of their ids."""
    mapped = map_spans(decode_protobuf(body), Catalogue({PROMPT}, {(PROMPT, 1)}))
    assert len(mapped.executions) == BATCH
    chosen = mapped.executions[:n]
    text = json.dumps({"events": [json.loads(e.model_dump_json(exclude_none=True))
                                  for e in chosen]}, separators=(",", ":")).encode()
    offsets = [(text.find(e.event_id.encode()), len(e.event_id)) for e in chosen]
    return Patcher(text, offsets)


def factories(url: str, token: str) -> dict[str, tuple[Callable[[], bytes], int]]:
    """Return each scenario's request factory (fresh ids each call) and events per request."""
    host = url.removeprefix("http://")
    spans = recorded_spans()
    traces = otlp_patcher(spans)
    auth = {"Authorization": f"Bearer {token}"}

    def fresh(n: int) -> list[bytes]:
        raw = os.urandom(24 * n)
        return [raw[i:i + 24] for i in range(0, len(raw), 24)]

    def traces_request() -> bytes:
        values = [v for ids in fresh(BATCH) for v in (ids[:16], ids[16:])]
        return http_request("POST", "/v1/traces", host, {
            **auth, "Content-Type": "application/x-protobuf"}, traces.fill(values))

    def events_factory(n: int) -> Callable[[], bytes]:
        events = events_patcher(spans, n)

        def events_request() -> bytes:
            values = [f"{ids[:16].hex()}:{ids[16:].hex()}".encode() for ids in fresh(n)]
            return http_request("POST", "/v1/events", host, {
                **auth, "Content-Type": "application/json"}, events.fill(values))

        return events_request

    return {EVENTS: (events_factory(BATCH), BATCH), SDK_EVENTS: (events_factory(SDK_BATCH),
                                                                 SDK_BATCH),
            TRACES: (traces_request, BATCH)}


def _per_event(us_per_request: float | None, n: int) -> str:
    return "-" if us_per_request is None else f"{us_per_request / n:.1f}"


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-otlp-") as tmp:
        data_dir, port = Path(tmp), free_port()
        env = {**os.environ, "PROMPTD_DATABASE_URL": f"sqlite:///{data_dir / 'promptd.db'}",
               "PROMPTD_TOKEN_FILE": str(data_dir / "admin.token"), "PROMPTD_PORT": str(port),
               "PROMPTD_LOG_FORMAT": "json", "PROMPTD_LOG_LEVEL": "warning",
               "PROMPTD_SCHEDULER_ENABLED": "false",
               # 16 closed-loop clients with ~200 KB bodies each: the default 1 MiB of ingest
               # bodies in flight would shed most of them (503, cheap) and measure admission
               # control instead of ingest; test_overload measures the shedding.
               "PROMPTD_MAX_INGEST_BYTES_IN_FLIGHT": str(64 * 2**20)}
        server = launch([PROMPTD, "serve"], data_dir, port, env)
        try:
            server.wait_for("/healthz")
            admin = (data_dir / "admin.token").read_text().strip()
            with httpx.Client(base_url=server.url, timeout=30,
                              headers={"Authorization": f"Bearer {admin}"}) as c:
                c.post("/v1/prompts", json={"name": PROMPT, "template": TEMPLATE}
                       ).raise_for_status()
                token = c.post("/v1/tokens", json={"role": "agent"}).json()["token"]
            scenarios = factories(server.url, token)
            results: dict[str, list[LoadResult]] = {name: [] for name in scenarios}
            for _ in range(ROUNDS):
                for name, (factory, n) in scenarios.items():
                    results[name].append(run_load(
                        server.url, factory, concurrency=CLIENTS, duration_s=ROUND_S,
                        warmup_s=1.0, events_per_request=n, server_pid=server.proc.pid))
        finally:
            server.stop()
    pooled_results = {name: pooled(r) for name, r in results.items()}
    rows = [[name, f"{r.events_per_s:,.0f}", f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}",
             _per_event(r.server_cpu_us_per_request, scenarios[name][1]),
             f"{100 * (r.loop_share or 0):.0f}%",
             _per_event(r.client_cpu_us_per_request, scenarios[name][1]), str(dict(r.statuses))]
            for name, r in pooled_results.items()]
    print_table(rows, ["route", "events or spans/s", "p50 ms", "p99 ms", "server us/event",
                       "loop", "client us/event", "statuses"])
    events, traces = pooled_results[EVENTS], pooled_results[TRACES]
    ratio = traces.events_per_s / events.events_per_s
    sdk_ratio = traces.events_per_s / pooled_results[SDK_EVENTS].events_per_s
    failed = sum(r.failed for r in pooled_results.values())
    verdict = "ok" if ratio >= TARGET and failed == 0 else "MISS"
    print(f"{verdict}: /v1/traces spans/s = {ratio:.2f} x /v1/events events/s in the same "
          f"512-event batches (target >= {TARGET}); {sdk_ratio:.2f} x the SDK's 100-event "
          f"batches (for scale); failed requests: {failed}")
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
