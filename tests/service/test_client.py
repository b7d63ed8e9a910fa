"""The agent SDK against a real daemon on loopback: cache, fallback, batching, retries."""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from service.sdk import (
    AsyncPromptdClient,
    BufferFull,
    ClientClosed,
    PromptdClient,
    PromptUnavailable,
    RejectedEvent,
    Undelivered,
    parse_retry_after,
    retry_delay,
)
from tests.support import LiveDaemon, free_port, live_daemon

PROMPT = "support/triage"


@pytest.fixture
def agent_token(live: LiveDaemon) -> str:
    """An agent token on a daemon that knows ``support/triage`` (v1)."""
    live.create_prompt(PROMPT)
    return live.issue("agent")


def _stored(live: LiveDaemon, kind: str = "execution") -> list[dict[str, Any]]:
    r = live.client().get("/v1/events", params={"type": kind, "limit": 10_000})
    r.raise_for_status()
    return list(r.json()["events"])


def _served(live: LiveDaemon, series: str, label: str = "") -> float:
    """Return a counter from the daemon's /metrics (how many requests it has answered)."""
    for line in httpx.get(f"{live.url}/metrics").text.splitlines():
        if line.startswith(series) and label in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _event_posts(live: LiveDaemon) -> float:
    return _served(live, "promptd_ingest_duration_seconds_count", 'route="/v1/events"')


def _dormant_daemon(tmp: Path) -> tuple[int, str]:
    """Prepare a daemon's database (prompt + agent token), stop it; return (port, token)."""
    port = free_port()
    with live_daemon(tmp, port=port) as d:
        d.create_prompt(PROMPT)
        token = d.issue("agent")
    return port, token


class DropsAnswers(httpx.HTTPTransport):
    """A network that delivers the first ``n`` event posts but loses the daemon's answers."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.left = n

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path == "/v1/events" and self.left > 0:
            self.left -= 1
            response.read()
            response.close()
            raise httpx.ReadError("connection reset after the request was sent", request=request)
        return response


# -- resolve -----------------------------------------------------------------------------


def test_resolve_returns_the_production_version_and_serves_later_calls_from_the_cache(
        live: LiveDaemon, agent_token: str) -> None:
    with PromptdClient(live.url, agent_token) as client:
        first = client.resolve(PROMPT, "user-1")
        served_before = _served(live, "promptd_resolve_duration_seconds_count")
        again = [client.resolve(PROMPT, f"user-{i}") for i in range(50)]
        assert _served(live, "promptd_resolve_duration_seconds_count") == served_before == 1
    assert (first.version, first.stale, first.from_fallback) == (1, False, False)
    assert first.variables == ("customer", "ticket")
    assert all(r is first for r in again)
    assert first.render(ticket="T-9", customer="ACME") == "Answer the ticket T-9 for ACME."


def test_after_the_ttl_the_cached_version_is_served_stale_and_refreshed_in_the_background(
        live: LiveDaemon, agent_token: str) -> None:
    with PromptdClient(live.url, agent_token, cache_ttl=1.0) as client:
        first = client.resolve(PROMPT)
        fetched_at = time.monotonic()
        assert client.resolve(PROMPT) is first and not first.stale  # within the TTL
        r = live.client().post(f"/v1/prompts/{PROMPT}/versions",
                               json={"template": "v2 {{ ticket }}", "make_production": True})
        assert r.status_code == 201
        time.sleep(max(0.0, fetched_at + 1.05 - time.monotonic()))
        # The first call past the TTL answers from memory and only starts the refresh.
        stale = client.resolve(PROMPT)
        assert (stale.version, stale.stale) == (1, True)
        deadline = time.monotonic() + 5.0
        latest = stale
        while latest.version != 2 and time.monotonic() < deadline:
            time.sleep(0.01)
            latest = client.resolve(PROMPT)
    assert (latest.version, latest.stale, latest.template) == (2, False, "v2 {{ ticket }}")


def test_resolve_uses_the_fallback_template_while_the_daemon_is_down_then_the_real_one(
        tmp_path: Path) -> None:
    port, token = _dormant_daemon(tmp_path)
    url = f"http://127.0.0.1:{port}"
    fallback = {PROMPT: "Fallback: {{ ticket }}"}
    with PromptdClient(url, token, fallback_templates=fallback, cache_ttl=30.0) as client:
        down = client.resolve(PROMPT, "user-1")
        assert (down.version, down.from_fallback, down.variables) == (None, True, ("ticket",))
        assert down.render(ticket="T-1") == "Fallback: T-1"
        with pytest.raises(PromptUnavailable, match="cannot reach promptd"):
            client.resolve("billing/refund")  # no fallback for this one
        with live_daemon(tmp_path, port=port):
            deadline = time.monotonic() + 5.0
            up = down
            while up.from_fallback and time.monotonic() < deadline:
                time.sleep(0.05)
                up = client.resolve(PROMPT, "user-1")
    assert (up.version, up.from_fallback) == (1, False)


def test_an_unknown_prompt_without_fallback_names_the_daemons_reason(
        live: LiveDaemon, agent_token: str) -> None:
    with PromptdClient(live.url, agent_token) as client, \
            pytest.raises(PromptUnavailable, match="404 not_found: unknown prompt"):
        client.resolve("billing/refund")


# -- recording and delivery --------------------------------------------------------------


def test_records_go_out_in_full_batches_and_every_one_lands_once(
        live: LiveDaemon, agent_token: str) -> None:
    posts_before = _event_posts(live)
    with PromptdClient(live.url, agent_token, batch_size=100, flush_interval=30.0) as client:
        ids = [client.record_execution(PROMPT, 1, success=i % 3 != 0, latency_ms=float(i),
                                       subject=f"user-{i % 7}") for i in range(250)]
        client.flush(timeout=10)
        stats = client.stats
    assert (stats.recorded, stats.stored, stats.pending, stats.requests) == (250, 250, 0, 3)
    assert _event_posts(live) - posts_before == 3
    stored = _stored(live)
    assert [e["event_id"] for e in stored] == ids  # UUIDv7: time-ordered, in record order
    assert all(e["event_id"][14] == "7" for e in stored)


def test_events_recorded_while_the_daemon_is_down_arrive_exactly_once_after_it_starts(
        tmp_path: Path) -> None:
    port, token = _dormant_daemon(tmp_path)
    client = PromptdClient(f"http://127.0.0.1:{port}", token, batch_size=10,
                           flush_interval=0.05, backoff_base=0.02, backoff_cap=0.2, seed=1)
    ids = [client.record_execution(PROMPT, 1, success=True) for _ in range(25)]
    time.sleep(0.4)
    assert client.stats.retries >= 2 and client.stats.stored == 0
    with live_daemon(tmp_path, port=port) as live:
        client.close(timeout=10)
        stored = _stored(live)
    assert sorted(e["event_id"] for e in stored) == sorted(ids)
    assert client.stats.stored == 25


def test_a_retry_after_a_lost_answer_is_not_counted_twice(
        live: LiveDaemon, agent_token: str) -> None:
    client = PromptdClient(live.url, agent_token, transport=DropsAnswers(2), batch_size=20,
                           backoff_base=0.01, seed=2)
    ids = [client.record_execution(PROMPT, 1, score=0.5) for _ in range(20)]
    client.close(timeout=10)
    stats = client.stats
    assert (stats.requests, stats.retries, stats.stored, stats.duplicates) == (3, 2, 0, 20)
    assert sorted(e["event_id"] for e in _stored(live)) == sorted(ids)


def test_close_delivers_everything_recorded_and_then_refuses_new_events(
        live: LiveDaemon, agent_token: str) -> None:
    client = PromptdClient(live.url, agent_token, batch_size=1000, flush_interval=60.0)
    for i in range(500):
        client.record_execution(PROMPT, 1, success=bool(i % 2))
    client.record_correction(client.record_execution(PROMPT, 1, success=False), PROMPT, 1,
                             "tone", reason="too curt")
    client.close()
    assert len(_stored(live)) == 501
    assert len(_stored(live, "correction")) == 1
    with pytest.raises(ClientClosed):
        client.record_execution(PROMPT, 1, success=True)


def test_close_hands_back_what_it_could_not_deliver(tmp_path: Path) -> None:
    client = PromptdClient(f"http://127.0.0.1:{free_port()}", "pd_agent_x", backoff_cap=0.1)
    ids = [client.record_execution(PROMPT, 1, success=True) for _ in range(5)]
    with pytest.raises(Undelivered) as caught:
        client.close(timeout=0.3)
    assert len(caught.value.pending) == 5
    assert all(i.encode() in body for i, body in zip(ids, caught.value.pending, strict=True))


def test_a_full_buffer_raises_after_a_short_wait_instead_of_dropping(tmp_path: Path) -> None:
    client = PromptdClient(f"http://127.0.0.1:{free_port()}", "pd_agent_x", max_buffer=10,
                           batch_size=5, block_timeout=0.1, backoff_cap=0.1)
    for _ in range(10):
        client.record_execution(PROMPT, 1, success=True)
    started = time.monotonic()
    with pytest.raises(BufferFull, match="10 events await delivery"):
        client.record_execution(PROMPT, 1, success=True)
    assert 0.09 <= time.monotonic() - started < 1.0
    with pytest.raises(Undelivered) as caught:
        client.close(timeout=0.2)
    assert len(caught.value.pending) == 10


def test_an_invalid_event_fails_at_the_call_site(live: LiveDaemon, agent_token: str) -> None:
    with PromptdClient(live.url, agent_token) as client:
        with pytest.raises(ValidationError, match="needs an outcome"):
            client.record_execution(PROMPT, 1, latency_ms=5.0)
        with pytest.raises(ValidationError, match="latency_ms"):
            client.record_execution(PROMPT, 1, success=True, latency_ms=-1.0)
        assert client.stats.recorded == 0


def test_a_rejected_event_is_reported_and_the_rest_of_its_batch_is_stored(
        live: LiveDaemon, agent_token: str) -> None:
    seen: list[RejectedEvent] = []
    with PromptdClient(live.url, agent_token, batch_size=10, flush_interval=30.0,
                       on_rejected=seen.append) as client:
        ids = [client.record_execution(PROMPT, 99 if i in (3, 7) else 1, success=True)
               for i in range(10)]
        client.flush(timeout=10)
        stats, rejected = client.stats, list(client.rejected)
    assert (stats.stored, stats.rejected, stats.requests) == (8, 2, 2)
    assert seen == rejected and [r.status for r in rejected] == [422, 422]
    assert all("has no version 99" in r.message for r in rejected)
    assert [ids[3].encode() in rejected[0].event, ids[7].encode() in rejected[1].event] == [
        True, True]
    assert sorted(e["event_id"] for e in _stored(live)) == sorted(
        i for n, i in enumerate(ids) if n not in (3, 7))


def test_a_batch_too_big_for_the_daemon_is_split_and_a_single_oversized_event_is_rejected(
        tmp_path: Path) -> None:
    with live_daemon(tmp_path, max_body_bytes=4096) as live:
        live.create_prompt(PROMPT)
        with PromptdClient(live.url, live.issue("agent"), batch_size=10,
                           flush_interval=30.0) as client:
            ids = [client.record_execution(PROMPT, 1, success=True,
                                           input_text=("x" * (6000 if i == 4 else 900)))
                   for i in range(10)]
            client.flush(timeout=10)
            stats, rejected = client.stats, list(client.rejected)
        stored = {e["event_id"] for e in _stored(live)}
    assert stored == {i for n, i in enumerate(ids) if n != 4}
    assert (stats.stored, stats.rejected) == (9, 1)
    assert rejected[0].status == 413 and ids[4].encode() in rejected[0].event


# -- the timing context manager ------------------------------------------------------------


def test_the_execution_block_records_latency_version_and_outcome(
        live: LiveDaemon, agent_token: str) -> None:
    with PromptdClient(live.url, agent_token) as client:
        with client.execution(PROMPT, subject="user-9") as ok:
            assert ok.render(ticket="T", customer="C") == "Answer the ticket T for C."
            time.sleep(0.05)
            ok.success, ok.output_tokens = True, 42
        with pytest.raises(TimeoutError), client.execution(PROMPT, subject="user-8") as bad:
            raise TimeoutError("model did not answer")
        client.flush(timeout=10)
    by_id = {e["event_id"]: e["payload"] for e in _stored(live)}
    good, failed = by_id[ok.event_id], by_id[bad.event_id]
    assert ok.recorded and bad.recorded
    assert good["success"] is True and good["version"] == 1 and good["subject"] == "user-9"
    assert good["output_tokens"] == 42 and 50.0 <= good["latency_ms"] < 5_000.0
    assert (failed["success"], failed["error_type"]) == (False, "TimeoutError")


def test_a_run_that_cannot_be_recorded_never_hides_the_callers_exception(
        live: LiveDaemon, agent_token: str) -> None:
    with PromptdClient(live.url, agent_token) as client:
        with pytest.raises(KeyError), client.execution(PROMPT) as masked:
            masked.score = 2.0  # out of range: the record fails, the KeyError must win
            raise KeyError("ticket")
        with pytest.raises(ValidationError, match="score"), client.execution(PROMPT) as bad:
            bad.score = 2.0
        assert not masked.recorded and not bad.recorded and client.stats.recorded == 0


def test_an_execution_on_a_fallback_template_is_not_recorded(tmp_path: Path) -> None:
    with PromptdClient(f"http://127.0.0.1:{free_port()}", "pd_agent_x",
                       fallback_templates={PROMPT: "Help with {{ ticket }}"}) as client:
        with client.execution(PROMPT) as run:
            text = run.render(ticket="T-3")
        assert text == "Help with T-3" and run.success is True and not run.recorded
        assert client.stats.recorded == 0


# -- async -------------------------------------------------------------------------------


def test_the_async_client_resolves_times_records_and_delivers_on_close(
        live: LiveDaemon, agent_token: str) -> None:
    async def agent() -> tuple[list[str], int]:
        async with AsyncPromptdClient(live.url, agent_token, batch_size=50,
                                      flush_interval=30.0) as client:
            first = await client.resolve(PROMPT, "user-1")
            assert (first.version, first.from_fallback) == (1, False)
            assert await client.resolve(PROMPT, "user-2") is first
            ids = [await client.record_execution(PROMPT, 1, success=True, latency_ms=1.0)
                   for _ in range(120)]
            async with client.execution(PROMPT, subject="user-3") as run:
                run.score = 0.75
            ids.append(run.event_id)
            await client.record_correction(run.event_id, PROMPT, 1, "format")
            await client.flush(timeout=10)
            return ids, client.stats.requests

    ids, requests = asyncio.run(agent())
    assert requests == 3  # 50 + 50 + the last 22 at flush
    assert sorted(e["event_id"] for e in _stored(live)) == sorted(ids)
    assert _stored(live, "correction")[0]["payload"]["execution_id"] == ids[-1]


def test_the_async_client_retries_until_the_daemon_starts(tmp_path: Path) -> None:
    port, token = _dormant_daemon(tmp_path)

    async def agent() -> list[str]:
        client = AsyncPromptdClient(f"http://127.0.0.1:{port}", token, flush_interval=0.05,
                                    backoff_base=0.02, backoff_cap=0.2, seed=3)
        ids = [await client.record_execution(PROMPT, 1, success=True) for _ in range(15)]
        await asyncio.sleep(0.3)
        assert client.stats.retries >= 2
        with live_daemon(tmp_path, port=port) as live:
            await client.close(timeout=10)
            assert sorted(e["event_id"] for e in _stored(live)) == sorted(ids)
        return ids

    assert len(asyncio.run(agent())) == 15


# -- backoff arithmetic --------------------------------------------------------------------


def test_retry_delay_is_jittered_below_the_capped_exponential_bound() -> None:
    rng = random.Random(7)
    for attempt in range(12):
        bound = min(2.0, 0.05 * 2 ** attempt)
        delays = [retry_delay(attempt, None, base=0.05, cap=2.0, rng=rng) for _ in range(400)]
        assert all(0.0 <= d <= bound for d in delays)
        # Full jitter is uniform on [0, bound]: mean bound/2, standard error bound/sqrt(12*400).
        assert abs(sum(delays) / len(delays) - bound / 2) < 4 * bound / (12 * 400) ** 0.5


def test_retry_delay_waits_at_least_what_retry_after_asks_within_a_minute() -> None:
    rng = random.Random(8)
    assert all(retry_delay(a, 2.0, base=0.05, cap=1.0, rng=rng) == 2.0 for a in range(10))
    assert retry_delay(0, 86_400.0, base=0.05, cap=1.0, rng=rng) == 60.0


def test_parse_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    in_90s = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after("2", now.timestamp()) == 2.0
    assert parse_retry_after(in_90s, now.timestamp()) == pytest.approx(90.0)
    assert parse_retry_after(None, 0.0) is None and parse_retry_after("soon", 0.0) is None
