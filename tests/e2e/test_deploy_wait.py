"""`promptd deploy --wait` against a real daemon process, with real CLI processes.

A machine canary holds the prompt. Without --wait an admin's deploy supersedes it; with
--wait the admin queues behind it (and behind another admin who got there first) and
deploys once the prompt is free; a Ctrl-C or the timeout leave nothing deployed.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.contract.ids import uuid7
from tests.support import PROMPTD, DaemonProcess, start_process

PROMPT = "support/triage"
REASONS = ["the date is not in ISO format", "dates must use ISO 8601 format",
           "wrong date format, expected YYYY-MM-DD", "please write the date in ISO format"]


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    proc = start_process(tmp_path, extra_env={
        "PROMPTD_IMPROVE_MIN_PATTERN_SIZE": "3", "PROMPTD_IMPROVE_MIN_PATTERN_SHARE": "0.0",
        "PROMPTD_IMPROVE_COOLDOWN_S": "0"})
    try:
        yield proc
    finally:
        proc.terminate()


def _api(daemon: DaemonProcess, token: str | None = None) -> httpx.Client:
    return httpx.Client(base_url=daemon.url, timeout=30.0,
                        headers={"Authorization": f"Bearer {token or daemon.admin_token}"})


def _machine_canary(api: httpx.Client) -> tuple[str, int]:
    """Return the machine canary the improver started on PROMPT, and a hand-written fix."""
    api.post("/v1/prompts", json={"name": PROMPT, "template": "Triage {{ ticket }}"}
             ).raise_for_status()
    rng = random.Random(0)
    events: list[dict[str, Any]] = []
    for i in range(90):
        eid = uuid7()
        events.append({"type": "execution", "event_id": eid, "prompt": PROMPT, "version": 1,
                       "success": i % 3 != 0, "latency_ms": 200.0,
                       "variables": {"ticket": f"T-{i}"}})
        if i % 3 == 0:
            events.append({"type": "correction", "execution_id": eid, "prompt": PROMPT,
                           "version": 1, "category": "format", "reason": rng.choice(REASONS),
                           "corrected_output": f"fixed answer {i}", "severity": "high"})
    api.post("/v1/events", json={"events": events}).raise_for_status()
    api.post("/v1/jobs/mine").raise_for_status()
    assert api.post("/v1/jobs/improve").json()["result"] >= 1
    (held,) = _live(api)
    assert held["machine_written"]
    fix = api.post(f"/v1/prompts/{PROMPT}/versions",
                   json={"template": "Triage {{ ticket }}; write dates as YYYY-MM-DD."})
    return str(held["deployment_id"]), int(fix.json()["version"])


def _live(api: httpx.Client) -> list[dict[str, Any]]:
    return list(api.get("/v1/deployments", params={"prompt": PROMPT}).json()["deployments"])


def _phase(api: httpx.Client, dep: str) -> str:
    return str(api.get(f"/v1/deployments/{dep}").json()["phase"])


def _end(api: httpx.Client, dep: str) -> None:
    r = api.post(f"/v1/deployments/{dep}/rollback", json={"reason": "its canary ended"})
    assert r.status_code == 200, r.text


class Cli:
    """A `promptd` process whose stderr is read line by line as it runs."""

    def __init__(self, daemon: DaemonProcess, *args: str, token: str | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPTD_")}
        env.update(PROMPTD_URL=daemon.url, PROMPTD_TOKEN=token or daemon.admin_token)
        self.proc = subprocess.Popen([PROMPTD, *args], env=env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert self.proc.stderr is not None
        self.reader = threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True)
        self.reader.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line)

    def expect(self, text: str, timeout: float = 60.0) -> str:
        """Return the first stderr line containing ``text``; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no stderr line with {text!r}; saw {self.seen}")

    def finish(self, timeout: float = 60.0) -> tuple[int, str, str]:
        """Return the exit status, stdout and the rest of stderr once the process ends."""
        self.proc.wait(timeout)
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()
        self.reader.join(timeout)  # stderr is drained once the process has closed it
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return self.proc.returncode, out, "".join(self.seen)


def test_deploy_without_wait_supersedes_the_machine_canary(daemon: DaemonProcess) -> None:
    api = _api(daemon)
    machine, fix = _machine_canary(api)
    code, out, err = Cli(daemon, "deploy", PROMPT, str(fix)).finish()
    assert code == 0, err
    assert "started dep-" in out
    assert _phase(api, machine) == "superseded"
    (mine,) = _live(api)
    assert not mine["machine_written"] and [a["version"] for a in mine["arms"]][-1] == fix
    # A person's deployment is never superseded, with or without --wait.
    code, _, err = Cli(daemon, "deploy", PROMPT, str(fix)).finish()
    assert code == 1 and "409" in err and mine["deployment_id"] in err


def test_deploy_wait_queues_behind_the_machine_canary_and_deploys_when_it_ends(
        daemon: DaemonProcess) -> None:
    api = _api(daemon)
    machine, fix = _machine_canary(api)
    asked = api.post("/v1/deployments", json={"prompt": PROMPT, "versions": [fix],
                                              "supersede": False})
    assert asked.status_code == 409, asked.text
    assert asked.json()["error"]["details"] == [{"field": "prompt",
                                                 "message": f"held by {machine}"}]
    waiting = Cli(daemon, "deploy", PROMPT, str(fix), "--wait", "--poll", "0.2", "--json")
    line = waiting.expect("waiting")
    assert machine in line and "machine canary" in line and "step 1/" in line
    time.sleep(1.0)  # several polls: still queued, the machine canary untouched
    assert waiting.proc.poll() is None
    assert [d["deployment_id"] for d in _live(api)] == [machine]
    _end(api, machine)
    code, out, err = waiting.finish()
    assert code == 0, err
    assert _phase(api, machine) == "rolled_back"  # it ended on its own terms, not superseded
    (mine,) = _live(api)
    assert mine["deployment_id"] in out and not mine["machine_written"]


def test_two_waiting_admins_deploy_one_at_a_time(daemon: DaemonProcess) -> None:
    api = _api(daemon)
    machine, fix = _machine_canary(api)
    tokens = [api.post("/v1/tokens", json={"role": "admin", "name": name}).json()["token"]
              for name in ("alice", "bob")]
    admins = [Cli(daemon, "deploy", PROMPT, str(fix), "--wait", "--poll", "0.05", "--json",
                  token=t) for t in tokens]
    for admin in admins:
        assert machine in admin.expect("waiting")
    _end(api, machine)
    deadline = time.monotonic() + 60
    while len(_live(api)) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    (first,) = _live(api)
    time.sleep(1.0)  # the loser has polled many times by now; it still waits
    (loser,) = [a for a in admins if a.proc.poll() is None]
    (winner,) = [a for a in admins if a is not loser]
    code, out, err = winner.finish()
    assert code == 0 and first["deployment_id"] in out, err
    assert first["deployment_id"] in loser.expect("held by")
    assert _phase(api, first["deployment_id"]) == "running"
    _end(api, first["deployment_id"])
    code, out, err = loser.finish()
    assert code == 0, err
    (second,) = _live(api)
    assert second["deployment_id"] in out and second["deployment_id"] != first["deployment_id"]
    history = api.get(f"/v1/prompts/{PROMPT}/history").json()["history"]
    live: set[str] = set()
    started = 0
    for h in history:  # folding the log: never two deployments running at once
        if h["type"] == "deployment.started":
            live.add(h["deployment_id"])
            started += 1
            assert len(live) == 1, h
        elif h["type"] in ("deployment.rolled_back", "deployment.promoted",
                           "deployment.superseded"):
            live.discard(h["deployment_id"])
    assert started == 3 and not any(h["type"] == "deployment.superseded" for h in history)


def test_deploy_wait_gives_up_at_its_timeout_saying_so_every_ten_seconds(
        daemon: DaemonProcess) -> None:
    api = _api(daemon)
    machine, fix = _machine_canary(api)
    code, _, err = Cli(daemon, "deploy", PROMPT, str(fix), "--wait", "--timeout", "11",
                       "--poll", "0.5").finish()
    assert code == 1
    progress = [line for line in err.splitlines() if line.startswith("waiting")]
    assert len(progress) == 2 and progress[1].startswith("waiting 1"), err  # at 0 s and 10 s
    assert "gave up after 11s" in err and "nothing deployed" in err
    assert [d["deployment_id"] for d in _live(api)] == [machine]


def test_ctrl_c_stops_waiting_cleanly_with_nothing_deployed(daemon: DaemonProcess) -> None:
    api = _api(daemon)
    machine, fix = _machine_canary(api)
    waiting = Cli(daemon, "deploy", PROMPT, str(fix), "--wait", "--poll", "0.2")
    waiting.expect("waiting")
    waiting.proc.send_signal(signal.SIGINT)
    code, out, err = waiting.finish()
    assert code == 130
    assert "stopped waiting (Ctrl-C)" in err and machine in err and "Traceback" not in err
    assert out == ""
    assert [d["deployment_id"] for d in _live(api)] == [machine]
