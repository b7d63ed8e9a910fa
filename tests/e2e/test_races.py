"""Concurrent actors on real daemons: every race ends in one state that the log explains.

Each scenario runs on SQLite (one ``promptd serve``) and on PostgreSQL (two replicas sharing
the database, requests spread over both). Decisions are commands appended with the stream
version they were decided on; these tests are the reason that matters.
"""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.assignment import assign
from service.contract.ids import uuid7
from service.projections.replay import replay
from tests.support import PROMPTD, DaemonProcess, start_process

pytestmark = pytest.mark.slow

# One step at the full split: the first tick with enough data decides.
ONE_STEP = {"steps": [100], "min_samples_per_step": 200, "min_step_seconds": 0,
            "analysis_interval_seconds": 0.001}


@dataclass
class Cluster:
    """One daemon on SQLite, or two replicas on one PostgreSQL; the admin token works on all."""

    procs: list[DaemonProcess]
    url: str  # the database
    token: str
    clients: list[httpx.Client] = field(default_factory=list)

    def client(self, i: int = 0, token: str | None = None) -> httpx.Client:
        """Return a client of replica ``i`` (round robin)."""
        proc = self.procs[i % len(self.procs)]
        c = httpx.Client(base_url=proc.url, timeout=60,
                         headers={"Authorization": f"Bearer {token or self.token}"})
        self.clients.append(c)
        return c

    def agent(self) -> httpx.Client:
        """Return an agent client of the first replica."""
        r = self.client().post("/v1/tokens", json={"role": "agent", "name": "race-agent"})
        r.raise_for_status()
        return self.client(0, r.json()["token"])


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    env = {"PROMPTD_IMPROVE_MIN_PATTERN_SIZE": "3", "PROMPTD_IMPROVE_MIN_PATTERN_SHARE": "0",
           "PROMPTD_IMPROVE_COOLDOWN_S": "0", "PROMPTD_REFRESH_INTERVAL_S": "0.2"}
    if request.param == "sqlite":
        data = tmp_path / "a"
        data.mkdir()
        procs = [start_process(data, extra_env=env)]
        url = f"sqlite:///{data / 'promptd.db'}"
    else:
        url = str(request.getfixturevalue("pg_url"))
        procs = []
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            procs.append(start_process(tmp_path / name,
                                       extra_env={**env, "PROMPTD_DATABASE_URL": url}))
    live = Cluster(procs, url, procs[0].admin_token)
    try:
        yield live
    finally:
        for c in live.clients:
            c.close()
        for p in procs:
            p.terminate()
    assert replay(url).equal, "replay must rebuild exactly the live read models"


def _together(actions: list[Callable[[], Any]]) -> list[Any]:
    """Run every action at once (released by one barrier); return results or exceptions."""
    barrier = threading.Barrier(len(actions))
    out: list[Any] = [None] * len(actions)

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = actions[i]()
        except Exception as exc:  # reported, then asserted on by the caller
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    return out


def _prompt(admin: httpx.Client, name: str, *templates: str) -> None:
    admin.post("/v1/prompts", json={"name": name, "template": "Answer {{ q }}."}
               ).raise_for_status()
    for t in templates:
        admin.post(f"/v1/prompts/{name}/versions", json={"template": t}).raise_for_status()


def _fill(agent: httpx.Client, name: str, rates: dict[str, float], n: int, seed: int) -> None:
    """Post ``n`` executions of a prompt's live deployment, assigning arms as the SDK does."""
    rollout = agent.get(f"/v1/prompts/{name}/resolve", params={"subject": "x"}).json()["rollout"]
    versions = {a["arm"]: a["version"] for a in rollout["arms"]}
    rng = random.Random(seed)
    events = []
    for i in range(n):
        subject = f"user-{seed}-{i}"
        arm = assign(rollout["deployment"], subject, rollout["weights"])
        events.append({"type": "execution", "event_id": uuid7(), "prompt": name,
                       "version": versions[arm], "deployment": rollout["deployment"],
                       "arm": arm, "step": rollout["step"], "subject": subject,
                       "success": rng.random() < rates[arm], "latency_ms": 100.0})
    for start in range(0, n, 500):
        agent.post("/v1/events", json={"events": events[start:start + 500]}).raise_for_status()


def test_admin_rollbacks_racing_canary_promotions_end_consistent(cluster: Cluster) -> None:
    admin, agent = cluster.client(), cluster.agent()
    names = [f"race/p{i}" for i in range(20)]
    deployments = {}
    for i, name in enumerate(names):
        _prompt(admin, name, "Answer {{ q }} and cite the policy.")
        r = admin.post("/v1/deployments", json={"prompt": name, "versions": [2],
                                                "policy": ONE_STEP})
        assert r.status_code == 201, r.text
        deployments[name] = r.json()["deployment_id"]
        _fill(agent, name, {"control": 0.5, "c1": 0.95}, 1200, seed=i)
    pending = admin.get(f"/v1/deployments/{deployments[names[0]]}").json()["next_decision"]
    assert pending["event"] == "deployment.promoted", pending  # the race is real
    ticker = cluster.client(0)
    actions: list[Callable[[], Any]] = [lambda: ticker.post("/v1/jobs/canary").json()]
    actions += [(lambda n=name, i=i: cluster.client(i).post(
        f"/v1/prompts/{n}/rollback", json={"reason": "race"})) for i, name in enumerate(names)]
    results = _together(actions)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert all(r.status_code == 200 for r in results[1:]), [r.text for r in results[1:]]
    outcomes: Counter[str] = Counter()
    for name in names:
        dep = admin.get(f"/v1/deployments/{deployments[name]}").json()
        production = admin.get(f"/v1/prompts/{name}").json()["labels"]["production"]
        stream = admin.get("/v1/events", params={
            "stream": f"prompt:{name}", "limit": 1000}).json()["events"]
        terminal = [e["type"] for e in stream if e["type"] in
                    ("deployment.promoted", "deployment.rolled_back")]
        assert len(terminal) == 1, terminal  # one decision ended it; the other never landed
        moves = [(e["payload"]["kind"], e["payload"]["version"]) for e in stream
                 if e["type"] == "label.moved"]
        assert production == moves[-1][1]  # production is what the last move says
        if dep["phase"] == "rolled_back":
            # The rollback stopped the canary first: the promotion was never applied.
            assert production == 1 and ("promotion", 2) not in moves, (name, moves)
            outcomes["rollback first"] += 1
        else:
            assert dep["phase"] == "promoted" and ("promotion", 2) in moves, (name, dep)
            # The promotion landed first; the rollback then either undid it in its own move
            # (a request that arrived after it) or found its deployment already ended.
            after = moves[moves.index(("promotion", 2)) + 1:]
            assert after in ([], [("rollback", 1)]), (name, moves)
            outcomes["promotion, then rollback" if after else "promotion first"] += 1
        served = agent.get(f"/v1/prompts/{name}/resolve", params={"subject": "s"}).json()
        assert served["version"] == production and served["deployment"] is None
    print(f"rollback vs promotion over {len(names)} deployments: {dict(outcomes)}")


def test_twenty_concurrent_rollbacks_move_production_back_exactly_once(
        cluster: Cluster) -> None:
    admin = cluster.client()
    name = "race/undo"
    _prompt(admin, name)
    for t in ("v2 {{ q }}", "harmful v3 {{ q }}"):
        admin.post(f"/v1/prompts/{name}/versions",
                   json={"template": t, "make_production": True}).raise_for_status()
    actions: list[Callable[[], Any]] = []
    for i in range(20):  # half as a plain retry would, half naming the version they saw
        body = {"reason": "bad edit", "from": 3} if i % 2 else {"reason": "bad edit"}
        actions.append(lambda i=i, body=body: cluster.client(i).post(
            f"/v1/prompts/{name}/rollback", json=body))
    results = _together(actions)
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    assert sum(r.json()["changed"] for r in results) == 1
    assert admin.get(f"/v1/prompts/{name}").json()["labels"]["production"] == 2
    moves = admin.get("/v1/events", params={"type": "label.moved", "stream": f"prompt:{name}"}
                      ).json()["events"]
    assert [m["payload"].get("kind") for m in moves].count("rollback") == 1
    # The CLI, run again and again at once, never goes further back (nor toggles forward).
    env = {"PROMPTD_URL": cluster.procs[-1].url, "PROMPTD_TOKEN": cluster.token,
           "PATH": "/usr/bin:/bin"}
    again = [subprocess.Popen([PROMPTD, "rollback", name], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    for p in again:
        out, err = p.communicate(timeout=90)
        assert p.returncode == 0, err
        assert out.startswith("nothing to do (already rolled back"), out
    assert admin.get(f"/v1/prompts/{name}").json()["labels"]["production"] == 2
    # Going back further is deliberate: --from the version production is now.
    r = admin.post(f"/v1/prompts/{name}/rollback", json={"from": 2})
    assert r.status_code == 200 and r.json()["production"] == 1, r.text
    r = admin.post(f"/v1/prompts/{name}/rollback", json={"from": 1})
    assert r.status_code == 409 and "no earlier" in r.json()["error"]["message"]


def test_admins_and_the_improver_adding_versions_get_distinct_numbers(
        cluster: Cluster) -> None:
    admin, agent = cluster.client(), cluster.agent()
    name = "race/numbering"
    _prompt(admin, name)
    events = []
    for i in range(90):
        eid = uuid7()
        events.append({"type": "execution", "event_id": eid, "prompt": name, "version": 1,
                       "success": False, "input_text": f"q {i}", "output_text": f"a {i}"})
        events.append({"type": "correction", "execution_id": eid, "prompt": name,
                       "version": 1, "category": "format",
                       "reason": random.Random(i).choice([
                           "the date is not in ISO format", "dates must use ISO 8601 format",
                           "wrong date format, expected YYYY-MM-DD"]),
                       "corrected_output": f"fixed {i}"})
    agent.post("/v1/events", json={"events": events}).raise_for_status()
    assert admin.post("/v1/jobs/mine").json()["result"] == 1
    leader = cluster.client(0)
    templates = [f"admin {i}: answer {{{{ q }}}} #{i}" for i in range(16)]
    actions: list[Callable[[], Any]] = [lambda: leader.post("/v1/jobs/improve").json()]
    actions += [(lambda i=i, t=t: cluster.client(i).post(
        f"/v1/prompts/{name}/versions", json={"template": t})) for i, t in enumerate(templates)]
    results = _together(actions)
    improved = results[0]
    assert not isinstance(improved, Exception) and improved["result"] >= 1, improved
    answers = results[1:]
    assert all(r.status_code == 201 for r in answers), [r.text for r in answers]
    numbers = [r.json()["version"] for r in answers]
    assert len(set(numbers)) == len(numbers)
    for i, (r, template) in enumerate(zip(answers, templates, strict=True)):
        assert r.json()["template"] == template  # each answer names its own template
        # Read back from the replica that answered (the other sees it within a refresh).
        stored = cluster.client(i).get(f"/v1/prompts/{name}/versions/{r.json()['version']}")
        assert stored.json()["template"] == template and stored.json()["strategy"] == "manual"
    time.sleep(1.0)  # both replicas' read models have caught up (refresh every 0.2 s)
    shown = admin.get(f"/v1/prompts/{name}").json()["versions"]
    assert [v["version"] for v in shown] == list(range(1, len(shown) + 1))
    machine = [v["version"] for v in shown if v["strategy"] != "manual"]
    candidates = admin.get(f"/v1/prompts/{name}/candidates").json()["candidates"]
    assert sorted(c["version"] for c in candidates) == sorted(machine)
    for v in machine:
        assert not admin.get(f"/v1/prompts/{name}/versions/{v}").json()["template"] \
            .startswith("admin")
    live = admin.get("/v1/deployments", params={"prompt": name}).json()["deployments"]
    assert len(live) == 1 and {a["version"] for a in live[0]["arms"]} - {1} == set(machine)


def test_concurrent_deploys_of_one_prompt_start_exactly_one(cluster: Cluster) -> None:
    admin = cluster.client()
    names = [f"race/deploy{i}" for i in range(5)]
    for name in names:
        _prompt(admin, name, "b {{ q }}", "c {{ q }}")
    actions: list[Callable[[], Any]] = [
        (lambda n=name, i=i: cluster.client(i).post("/v1/deployments", json={
            "prompt": n, "versions": [2 + i % 2]}))
        for name in names for i in range(6)]
    results = _together(actions)
    codes = Counter((r.request.content, r.status_code) for r in results)
    for name in names:
        mine = [r for r in results if f'"{name}"'.encode() in r.request.content]
        assert sorted(r.status_code for r in mine) == [201] + [409] * 5, [r.text for r in mine]
        running = admin.get("/v1/deployments", params={"prompt": name}).json()["deployments"]
        assert len(running) == 1
    assert codes  # every request was answered


@pytest.mark.parametrize("cluster", ["sqlite"], indirect=True)
def test_a_second_daemon_on_the_same_sqlite_file_refuses_in_one_line(
        cluster: Cluster, tmp_path: Path) -> None:
    first = cluster.procs[0]
    env = {**first.env, "PROMPTD_PORT": "0"}
    out = subprocess.run([PROMPTD, "serve"], env=env, capture_output=True, text=True,
                         timeout=90, cwd=tmp_path)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert "promptd.db" in lines[0] and f"pid {first.proc.pid}" in lines[0]
    assert cluster.client().get("/v1/status").status_code == 200  # the first one serves on


@pytest.mark.parametrize("cluster", ["sqlite"], indirect=True)
def test_restore_refuses_while_a_daemon_serves_the_file(cluster: Cluster,
                                                        tmp_path: Path) -> None:
    admin = cluster.client()
    _prompt(admin, "race/restore")
    env = {"PATH": "/usr/bin:/bin", "PROMPTD_DATABASE_URL": cluster.url}
    backup = tmp_path / "snap.db"
    done = subprocess.run([PROMPTD, "backup", str(backup)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    admin.post("/v1/prompts/race/restore/versions", json={"template": "later {{ q }}"}
               ).raise_for_status()
    head = admin.get("/v1/status").json()["log_position"]
    for extra in ([], ["--force"]):
        out = subprocess.run([PROMPTD, "restore", str(backup), *extra], env=env,
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 1
        assert "in use" in out.stderr and str(cluster.procs[0].proc.pid) in out.stderr
    assert admin.get("/v1/status").json()["log_position"] == head  # nothing was lost
    assert admin.get("/v1/prompts/race/restore").json()["latest_version"] == 2
