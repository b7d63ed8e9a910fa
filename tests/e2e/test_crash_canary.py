"""SIGKILL while canary ticks run under heavy ingest: nothing lost or doubled, no step redone."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.assignment import assign
from service.contract.ids import uuid7
from service.projections.replay import replay
from tests.support import DaemonProcess, start_process

pytestmark = pytest.mark.slow

PROMPT = "crash/canary"
# The candidate serves 5%, 15%, 30%, then 50%; each step needs this many executions per arm.
POLICY = {"steps": [10, 30, 60, 100], "min_samples_per_step": 150, "min_step_seconds": 0,
          "analysis_interval_seconds": 0.2, "max_samples_per_arm": 50_000}
RATES = {"control": 0.80, "c1": 0.85}
ENV = {"PROMPTD_SCHEDULER_ENABLED": "true", "PROMPTD_CANARY_INTERVAL_S": "0.2",
       "PROMPTD_MINE_INTERVAL_S": "3600", "PROMPTD_IMPROVE_INTERVAL_S": "3600"}


def _client(proc: DaemonProcess, token: str | None = None, timeout: float = 10) -> httpx.Client:
    return httpx.Client(base_url=proc.url, timeout=timeout,
                        headers={"Authorization": f"Bearer {token or proc.admin_token}"})


def _all_events(admin: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = 0
    while True:
        page = admin.get("/v1/events", params={"after": after, "limit": 10_000, **params}).json()
        if not page["events"]:
            return out
        out.extend(page["events"])
        after = page["next_after"]


def _agent_loop(proc: DaemonProcess, token: str, n: int, stop: threading.Event,
                acked: set[str], lock: threading.Lock) -> None:
    """Post batches of executions assigned locally, as the SDK does, until ``stop``."""
    rng = random.Random(n)
    client = _client(proc, token, timeout=5)
    while not stop.is_set():
        try:
            resolved = client.get(f"/v1/prompts/{PROMPT}/resolve").json()
            rollout = resolved["rollout"]
            versions = {a["arm"]: a["version"] for a in rollout["arms"]} if rollout else {}
            batch = []
            for _ in range(20):
                subject = f"user-{rng.randrange(100_000)}"
                arm = assign(rollout["deployment"], subject, rollout["weights"]) if rollout \
                    else "control"
                batch.append({"type": "execution", "event_id": uuid7(), "prompt": PROMPT,
                              "version": versions.get(arm, resolved["version"]),
                              "deployment": rollout["deployment"] if rollout else None,
                              "arm": arm if rollout else None, "subject": subject,
                              "success": rng.random() < RATES[arm], "latency_ms": 100.0})
            r = client.post("/v1/events", json={"events": batch})
        except (httpx.TransportError, KeyError, ValueError):
            continue  # the daemon died under us: not acknowledged, nothing promised
        if r.status_code == 200:
            with lock:
                acked.update(e["event_id"] for e in batch)
    client.close()


@contextmanager
def _agents(proc: DaemonProcess, token: str, acked: set[str]) -> Iterator[None]:
    """Run six posting agents for the duration of the block."""
    stop, lock = threading.Event(), threading.Lock()
    threads = [threading.Thread(target=_agent_loop, args=(proc, token, n, stop, acked, lock))
               for n in range(6)]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(30)


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_sigkill_during_canary_ticks_loses_nothing_and_the_deployment_resumes_its_step(
    tmp_path: Path,
) -> None:
    proc = start_process(tmp_path, extra_env=ENV)
    admin = _client(proc)
    admin.post("/v1/prompts", json={"name": PROMPT, "template": "Answer {{ ticket }}"}
               ).raise_for_status()
    admin.post(f"/v1/prompts/{PROMPT}/versions",
               json={"template": "Answer {{ ticket }} briefly."}).raise_for_status()
    token = admin.post("/v1/tokens", json={"role": "agent"}).json()["token"]
    r = admin.post("/v1/deployments", json={"prompt": PROMPT, "versions": [2], "policy": POLICY})
    assert r.status_code == 201, r.text
    dep_id = r.json()["deployment_id"]

    acked: set[str] = set()

    def stepped_under_load() -> bool:
        state = admin.get(f"/v1/deployments/{dep_id}").json()
        return len(acked) >= 2000 and state["step"] >= 2  # steps count from 1

    with _agents(proc, token, acked):
        try:
            _wait_for(stepped_under_load, 60, "the deployment never stepped under load")
        finally:
            # Agents are posting and canary ticks are running right now.
            proc.kill()
            admin.close()
    assert len(acked) >= 2000

    restarted = start_process(tmp_path, extra_env=ENV)
    try:
        admin = _client(restarted)
        stored = [e["event_id"] for e in _all_events(admin, type="execution")]
        assert len(stored) == len(set(stored)), "an event was stored twice"
        missing = acked - set(stored)
        assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"
        counts = {v["version"]: v["counts"]["executions"]
                  for v in admin.get(f"/v1/prompts/{PROMPT}").json()["versions"]}
        assert sum(counts.values()) == len(stored)  # folded exactly once

        # The deployment is where its last durable decision left it, and goes on from there.
        # A deployment's decisions are in its prompt's stream.
        stepped = [e["payload"]["step_index"]
                   for e in _all_events(admin, stream=f"prompt:{PROMPT}")
                   if e["type"] == "deployment.stepped"
                   and e["payload"]["deployment_id"] == dep_id]
        state = admin.get(f"/v1/deployments/{dep_id}").json()
        assert state["phase"] == "running", state
        assert stepped and (state["step"] - 1) == max(stepped) >= 1
        at_restart = state["step"] - 1  # as the log counts it

        def advanced() -> bool:
            s = admin.get(f"/v1/deployments/{dep_id}").json()
            return (s["step"] - 1) > at_restart or s["phase"] != "running"

        with _agents(restarted, token, acked):
            _wait_for(advanced, 60, "the deployment did not go on after the restart")
        state = admin.get(f"/v1/deployments/{dep_id}").json()
        assert (state["step"] - 1) > at_restart or state["phase"] == "promoted", state
        steps = Counter(e["payload"]["step_index"]
                        for e in _all_events(admin, stream=f"prompt:{PROMPT}")
                        if e["type"] == "deployment.stepped"
                        and e["payload"]["deployment_id"] == dep_id)
        assert all(n == 1 for n in steps.values()), f"a step was decided twice: {steps}"
        assert sorted(steps) == list(range(1, max(steps) + 1))
        admin.close()
    finally:
        restarted.terminate()
    assert replay(f"sqlite:///{tmp_path / 'promptd.db'}").equal
