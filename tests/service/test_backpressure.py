"""A full append queue answers 503 with Retry-After; the SDK waits, retries, and loses nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from service.contract.ids import uuid7
from service.sdk import PromptdClient
from tests.support import LiveDaemon, live_daemon

PROMPT = "busy/prompt"


@pytest.fixture
def tiny_queue(tmp_path: Path) -> Iterator[LiveDaemon]:
    """A daemon whose writer queues a single append request at a time."""
    with live_daemon(tmp_path, writer_queue_max=1) as live:
        live.create_prompt(PROMPT, "Answer {{ ticket }}")
        yield live


def _together(work: Callable[[int], None], n: int) -> None:
    start = threading.Barrier(n)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def _stored_ids(live: LiveDaemon) -> list[str]:
    admin, ids, after = live.client(), [], 0
    while page := admin.get("/v1/events", params={"after": after, "limit": 10_000,
                                                  "type": "execution"}).json()["events"]:
        ids.extend(e["event_id"] for e in page)
        after = page[-1]["position"]
    return ids


def test_a_burst_beyond_the_queue_is_answered_503_busy_with_retry_after(
    tiny_queue: LiveDaemon,
) -> None:
    token = tiny_queue.issue("agent")
    answers: list[httpx.Response] = []
    acked: list[str] = []
    lock = threading.Lock()

    def post(i: int) -> None:
        with httpx.Client(base_url=tiny_queue.url, timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            for _ in range(8):
                ids = [uuid7() for _ in range(50)]
                r = client.post("/v1/events", json={"events": [
                    {"type": "execution", "event_id": eid, "prompt": PROMPT, "version": 1,
                     "success": True} for eid in ids]})
                with lock:
                    answers.append(r)
                    if r.status_code == 200:
                        acked.extend(ids)

    _together(post, 16)
    busy = [r for r in answers if r.status_code == 503]
    assert busy, "16 concurrent posters never overflowed a one-request queue"
    assert {r.status_code for r in answers} == {200, 503}
    for r in busy:
        assert r.json()["error"]["code"] == "busy"
        assert int(r.headers["Retry-After"]) >= 1
    # A 503 stored nothing, a 200 stored everything: the log holds exactly the acknowledged.
    assert sorted(_stored_ids(tiny_queue)) == sorted(acked)


@pytest.mark.slow
def test_the_sdk_retries_busy_answers_until_every_recorded_event_lands(
    tiny_queue: LiveDaemon,
) -> None:
    token = tiny_queue.issue("agent")
    clients, per_client = 8, 150
    recorded: list[str] = []
    retries: list[int] = []
    lock = threading.Lock()

    def agent(i: int) -> None:
        sdk = PromptdClient(tiny_queue.url, token, batch_size=25, flush_interval=0.01,
                            backoff_base=0.01, seed=i)
        try:
            ids = [sdk.record_execution(PROMPT, 1, success=k % 2 == 0, latency_ms=5.0)
                   for k in range(per_client)]
            sdk.flush(timeout=45)
            stats = sdk.stats
        finally:
            sdk.close()
        assert stats.stored == per_client and stats.rejected == 0
        with lock:
            recorded.extend(ids)
            retries.append(stats.retries)

    _together(agent, clients)
    assert sum(retries) > 0, "the queue never overflowed, so nothing was retried"
    stored = _stored_ids(tiny_queue)
    assert len(stored) == len(set(stored)) == clients * per_client
    assert set(stored) == set(recorded)
    counts = tiny_queue.client().get(f"/v1/prompts/{PROMPT}").json()["versions"][0]["counts"]
    assert counts["executions"] == clients * per_client
