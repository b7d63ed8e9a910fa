"""Two ``promptd serve`` replicas on one PostgreSQL: one leader, failover, no double decisions."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.projections.replay import replay
from tests.service.traffic import run_traffic
from tests.support import DaemonProcess, start_process

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PROMPT = "support/triage"
# Steps serve the candidate 10%, 30%, then 50%; few samples per step keep the test short.
POLICY = {"steps": [20, 60, 100], "min_samples_per_step": 40, "min_step_seconds": 0,
          "analysis_interval_seconds": 0.3, "max_samples_per_arm": 20_000}
RATES = {1: 0.75, 2: 0.90}
# A replica's read models trail the log by at most one refresh interval plus a fold.
VISIBLE_WITHIN_S = 2.0
LEADER_CHECK_S = 2.0  # service.runtime.scheduler.JobScheduler's default
TAKEOVER_WITHIN_S = LEADER_CHECK_S + 3.0


def _replica(data_dir: Path, pg_url: str) -> DaemonProcess:
    data_dir.mkdir()
    return start_process(data_dir, extra_env={
        "PROMPTD_DATABASE_URL": pg_url,
        "PROMPTD_SCHEDULER_ENABLED": "true",
        "PROMPTD_CANARY_INTERVAL_S": "0.5",
        "PROMPTD_REFRESH_INTERVAL_S": "0.2",
        # Only the canary matters here: no mined patterns or machine-written candidates.
        "PROMPTD_MINE_INTERVAL_S": "3600",
        "PROMPTD_IMPROVE_INTERVAL_S": "3600",
    })


def _leader_gauge(url: str) -> int:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    match = re.search(r"^promptd_scheduler_leader (\S+)$", text, re.MULTILINE)
    assert match, "the leader gauge is missing from /metrics"
    return round(float(match.group(1)))


def _wait_for(condition: Callable[[], Any], timeout: float) -> float:
    """Return the seconds it took ``condition`` to hold; fail if it never does."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"not within {timeout}s"
        time.sleep(0.05)
    return time.monotonic() - started


def _client(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=10, headers={"Authorization": f"Bearer {token}"})


def _deployment(admin: httpx.Client, dep_id: str) -> dict[str, Any]:
    r = admin.get(f"/v1/deployments/{dep_id}")
    r.raise_for_status()
    return dict(r.json())


def _drive_until(agents: list[httpx.Client], admin: httpx.Client, dep_id: str,
                 done: Callable[[dict[str, Any]], bool], timeout: float,
                 seed: int) -> dict[str, Any]:
    """Send traffic round-robin through ``agents`` until ``done(deployment)``; return it."""
    deadline = time.monotonic() + timeout
    i = 0
    while True:
        state = _deployment(admin, dep_id)
        if done(state):
            return state
        assert time.monotonic() < deadline, f"deployment stuck: {state}"
        # Small batches: an execution belongs to the step current when it is appended, so
        # keep the gap between its resolve and its post short.
        run_traffic(agents[i % len(agents)], PROMPT, 60, RATES, seed=seed + i, batch=15)
        i += 1


def test_two_replicas_share_one_leader_and_the_canary_survives_killing_it(
    tmp_path: Path, pg_url: str,
) -> None:
    a = _replica(tmp_path / "a", pg_url)
    b: DaemonProcess | None = None
    try:
        b = _replica(tmp_path / "b", pg_url)
        token = a.admin_token  # b found the bootstrap admin token already issued
        assert not (b.data_dir / "admin.token").exists()
        admin_a, admin_b = _client(a.url, token), _client(b.url, token)
        assert _leader_gauge(a.url) == 1 and _leader_gauge(b.url) == 0

        # Writes through one replica are served by the other within a refresh.
        admin_a.post("/v1/prompts", json={"name": PROMPT, "template": "Triage {{ ticket }}"}
                     ).raise_for_status()
        agent_token = admin_a.post("/v1/tokens", json={"role": "agent"}).json()["token"]
        agent_a, agent_b = _client(a.url, agent_token), _client(b.url, agent_token)
        _wait_for(lambda: agent_b.get(f"/v1/prompts/{PROMPT}/resolve").status_code == 200,
                  VISIBLE_WITHIN_S)
        admin_b.post(f"/v1/prompts/{PROMPT}/versions",
                     json={"template": "Triage {{ ticket }}, citing the policy."}
                     ).raise_for_status()
        _wait_for(lambda: admin_a.get(f"/v1/prompts/{PROMPT}").json()["latest_version"] == 2,
                  VISIBLE_WITHIN_S)
        r = admin_a.post("/v1/deployments", json={"prompt": PROMPT, "versions": [2],
                                                  "policy": POLICY})
        assert r.status_code == 201, r.text
        dep_id = r.json()["deployment_id"]
        _wait_for(lambda: agent_b.get(f"/v1/prompts/{PROMPT}/resolve", params={"subject": "s"})
                  .json()["deployment"] == dep_id, VISIBLE_WITHIN_S)

        # Traffic through both replicas; the leader's canary job advances the deployment.
        before = _drive_until([agent_a, agent_b], admin_b, dep_id,
                              lambda d: d["step"] >= 2, timeout=60, seed=0)
        assert before["phase"] == "running", before

        a.kill()
        took = _wait_for(lambda: _leader_gauge(b.url) == 1, TAKEOVER_WITHIN_S)
        after = _drive_until([agent_b], admin_b, dep_id,
                             lambda d: d["step"] > before["step"]
                             or d["phase"] != "running", timeout=60, seed=1000)
        assert after["phase"] in ("running", "promoted", "awaiting_promotion"), after
        assert after["step"] > before["step"] or after["phase"] != "running"

        # A deployment's decisions are in its prompt's stream.
        events = [e for e in admin_b.get("/v1/events", params={
            "stream": f"prompt:{PROMPT}", "limit": 1000}).json()["events"]
            if e["payload"].get("deployment_id") == dep_id]
        steps = Counter(e["payload"]["step_index"] for e in events
                        if e["type"] == "deployment.stepped")
        assert steps and all(n == 1 for n in steps.values()), f"a step was decided twice: {steps}"
        assert sorted(steps) == list(range(1, max(steps) + 1))
        ends = [e["type"] for e in events
                if e["type"] in ("deployment.promoted", "deployment.rolled_back")]
        assert len(ends) <= 1
        print(f"takeover after {took:.2f}s; steps {dict(steps)}")
        for c in (admin_a, admin_b, agent_a, agent_b):
            c.close()
    finally:
        a.terminate()
        if b is not None:
            b.terminate()
    assert replay(pg_url).equal
