"""SIGKILL the daemon during sustained ingest: every acknowledged event survives, once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from service.projections.replay import replay
from tests.support import start_process

TEMPLATE = "Answer {{ ticket }}"


def test_every_acknowledged_event_survives_sigkill_exactly_once(tmp_path: Path) -> None:
    proc = start_process(tmp_path)
    admin = httpx.Client(base_url=proc.url, timeout=10,
                         headers={"Authorization": f"Bearer {proc.admin_token}"})
    admin.post("/v1/prompts", json={"name": "crash/test", "template": TEMPLATE}).raise_for_status()
    token = admin.post("/v1/tokens", json={"role": "agent"}).json()["token"]
    admin.close()

    acked: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def agent(n: int) -> None:
        client = httpx.Client(base_url=proc.url, timeout=5,
                              headers={"Authorization": f"Bearer {token}"})
        i = 0
        while not stop.is_set():
            ids = [f"crash-{n}-{i}-{j}" for j in range(20)]
            i += 1
            body = {"events": [{"type": "execution", "event_id": eid, "prompt": "crash/test",
                                "version": 1, "success": True, "latency_ms": 5.0}
                               for eid in ids]}
            try:
                r = client.post("/v1/events", json=body)
            except httpx.TransportError:
                continue  # the daemon died under us: not acknowledged, nothing promised
            if r.status_code == 200:
                with lock:
                    acked.update(ids)
        client.close()

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 3000 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.kill()  # mid-stream: requests are in flight and queued
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) >= 3000, "the daemon ingested too little before the kill to mean much"

    restarted = start_process(tmp_path)
    try:
        admin = httpx.Client(base_url=restarted.url, timeout=10,
                             headers={"Authorization": f"Bearer {restarted.admin_token}"})
        stored: list[str] = []
        after = 0
        while True:
            page = admin.get("/v1/events", params={"after": after, "limit": 10_000,
                                                   "type": "execution"}).json()
            stored.extend(e["event_id"] for e in page["events"])
            if not page["events"]:
                break
            after = page["next_after"]
        assert len(stored) == len(set(stored)), "an event was stored twice"
        missing = acked - set(stored)
        assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"
        counts = admin.get("/v1/prompts/crash/test").json()["versions"][0]["counts"]
        assert counts["executions"] == len(stored)  # projection caught up exactly once
        admin.close()
    finally:
        restarted.terminate()
    report = replay(f"sqlite:///{tmp_path / 'promptd.db'}")
    assert report.equal
