"""Overload against a real ``promptd serve``: 503s with Retry-After instead of timeouts, no
work committed for clients that have gone, memory back near its baseline afterwards."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from service.contract.ids import uuid7
from tests.e2e.flood import agent_traffic, flood, rss_bytes
from tests.support import DaemonProcess, start_process

PROMPT = "flood/prompt"
CONNECTIONS = 1000
CLIENT_TIMEOUT_S = 10.0  # the SDK's default request timeout
FLOOD_SECONDS = 8.0
MAX_REQUESTS_PER_CONNECTION = 60  # a bound besides the clock
RSS_GROWTH_FACTOR = 2.0
RSS_SETTLE_S = 20.0


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    """``promptd serve`` with the benchmark prompt, at default settings."""
    proc = start_process(tmp_path)
    try:
        with httpx.Client(base_url=proc.url, timeout=30,
                          headers={"Authorization": f"Bearer {proc.admin_token}"}) as admin:
            admin.post("/v1/prompts", json={"name": PROMPT, "template": "Answer {{ q }}"}
                       ).raise_for_status()
        yield proc
    finally:
        proc.terminate()


def _agent_token(proc: DaemonProcess) -> str:
    with httpx.Client(base_url=proc.url, timeout=30,
                      headers={"Authorization": f"Bearer {proc.admin_token}"}) as admin:
        r = admin.post("/v1/tokens", json={"role": "agent", "name": "flood"})
        r.raise_for_status()
        return str(r.json()["token"])


@pytest.mark.slow
def test_a_flood_of_1000_connections_is_answered_503_not_left_to_time_out(
    daemon: DaemonProcess,
) -> None:
    token = _agent_token(daemon)
    traffic = agent_traffic(daemon.url, token, PROMPT)
    # Warm up first: imports, caches and allocator arenas, so the baseline is the daemon's.
    flood(daemon.url, traffic, connections=16, duration_s=2.0, max_requests=50,
          timeout_s=CLIENT_TIMEOUT_S)
    baseline = rss_bytes(daemon.proc.pid)
    result = flood(daemon.url, traffic, connections=CONNECTIONS, duration_s=FLOOD_SECONDS,
                   max_requests=MAX_REQUESTS_PER_CONNECTION, timeout_s=CLIENT_TIMEOUT_S)
    deadline = time.monotonic() + RSS_SETTLE_S
    while (after := rss_bytes(daemon.proc.pid)) > RSS_GROWTH_FACTOR * baseline:
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    print(f"\nflood of {CONNECTIONS} connections: {result.summary()}; RSS "
          f"{baseline / 2**20:.0f} MiB before, {after / 2**20:.0f} MiB after")
    assert result.timeouts == 0, result.summary()
    assert result.connection_errors == 0, result.summary()
    assert result.busy > 0, "nothing was refused: admission control never engaged"
    assert result.retry_after == {"1"}
    assert result.answered > 0 and set(result.statuses) <= {200, 503}, result.summary()
    assert after <= RSS_GROWTH_FACTOR * baseline, (baseline, after)
    assert httpx.get(f"{daemon.url}/readyz", timeout=10).status_code == 200


def _post_and_leave(url: str, token: str, event_id: str) -> None:
    """Send one execution on a raw connection and close it without reading the answer."""
    host, port = url.removeprefix("http://").split(":")
    body = (f'{{"event_id":"{event_id}","prompt":"{PROMPT}","version":1,'
            '"success":true}').encode()
    request = (f"POST /v1/executions HTTP/1.1\r\nHost: {host}\r\n"
               f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        time.sleep(0.3)  # long enough to be read and queued behind the stalled commit


def test_an_append_whose_client_disconnected_before_its_commit_is_not_appended(
    daemon: DaemonProcess, tmp_path: Path,
) -> None:
    token = _agent_token(daemon)
    agent = httpx.Client(base_url=daemon.url, timeout=30,
                         headers={"Authorization": f"Bearer {token}"})
    stays, leaves = uuid7(), uuid7()
    # Another connection holds the database's write lock: the writer's next group commit
    # waits for it (busy timeout), and whatever arrives meanwhile queues behind it.
    blocker = sqlite3.connect(tmp_path / "promptd.db", timeout=1, isolation_level=None)
    with closing(blocker):
        blocker.execute("BEGIN IMMEDIATE")
        with httpx.Client(base_url=daemon.url, timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as patient:
            answers: list[httpx.Response] = []
            waiting = threading.Thread(target=lambda: answers.append(patient.post(
                "/v1/executions", json={"event_id": stays, "prompt": PROMPT, "version": 1,
                                        "success": True})))
            waiting.start()
            time.sleep(1.0)  # the writer has taken it and waits for the lock
            _post_and_leave(daemon.url, token, leaves)
            time.sleep(1.0)  # the daemon has seen the connection close
            blocker.execute("ROLLBACK")
            waiting.join(30)
    assert answers and answers[0].status_code == 200, answers
    time.sleep(0.5)  # the next group commit, which would hold the abandoned append
    ids = {e["event_id"] for e in httpx.get(
        f"{daemon.url}/v1/events", params={"type": "execution", "limit": 100}, timeout=30,
        headers={"Authorization": f"Bearer {daemon.admin_token}"}).json()["events"]}
    assert stays in ids
    assert leaves not in ids, "an append was committed for a client that had gone"
    # The client that left retries and lands normally.
    assert agent.post("/v1/executions", json={"event_id": leaves, "prompt": PROMPT,
                                              "version": 1, "success": True}
                      ).json()["duplicate"] is False
    agent.close()
