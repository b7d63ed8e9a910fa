"""Issue 19: `promptd demo` and `promptd simulate` as a person runs them in a terminal."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from service.simulation.demo import LOOP_PROMPT, base_text
from service.simulation.world import SIMULATION_TAG, WORLDS, World
from tests.service.test_cli import run
from tests.support import PROMPTD, LiveDaemon

WIDTH = 80  # a terminal's width, which the issue asks the demo to fit


@dataclass(frozen=True)
class Interrupted:
    """A demo stopped by Ctrl-C after its first progress block."""

    returncode: int
    stdout: str
    stderr: str
    folder: Path


def _wait_for(path: Path, pattern: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if re.search(pattern, path.read_text(), re.M):
            return
        assert proc.poll() is None, path.read_text()
        time.sleep(0.5)
    raise AssertionError(f"no {pattern!r} within {timeout}s:\n{path.read_text()}")


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Interrupted]:
    """Run `promptd demo`, press Ctrl-C once it has shown progress, and keep what it said."""
    tmp = tmp_path_factory.mktemp("demo")
    out, err = tmp / "stdout.txt", tmp / "stderr.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPTD_")}
    with open(out, "wb") as o, open(err, "wb") as e:
        # Its own process group, like a shell's foreground job: Ctrl-C in a terminal sends
        # SIGINT to every process of the group, which is what killpg does here.
        proc = subprocess.Popen([PROMPTD, "demo", "--duration", "300", "--data-dir",
                                 str(tmp / "data")], stdout=o, stderr=e, env=env, cwd=tmp,
                                process_group=0)
        try:
            _wait_for(out, r"executions/s", proc, timeout=180)
            _wait_for(out, r"v\d+/\w+", proc, timeout=60)  # a per-arm rate
            os.killpg(proc.pid, signal.SIGINT)
            returncode = proc.wait(180)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    yield Interrupted(returncode, out.read_text(), err.read_text(), tmp / "data")


def test_ctrl_c_stops_the_demo_cleanly_with_a_summary(interrupted: Interrupted) -> None:
    assert interrupted.returncode == 0, interrupted.stderr[-3000:]
    assert "Traceback" not in interrupted.stderr and "ClientClosed" not in interrupted.stderr
    assert "cannot reach promptd" not in interrupted.stdout + interrupted.stderr
    said = interrupted.stdout
    assert said.index("stopping (Ctrl-C)") < said.index("summary after") < said.index(
        "daemon stopped")


def test_demo_output_fits_80_columns(interrupted: Interrupted) -> None:
    for line in interrupted.stdout.splitlines():
        assert line.startswith(SIMULATION_TAG), line
        words = line.split()
        # A path or URL longer than a line is never broken (it must stay copyable).
        assert len(line) <= WIDTH or len(words) == 2, line


def test_demo_says_its_timings_are_compressed_and_hints_while_the_daemon_runs(
        interrupted: Interrupted) -> None:
    said = interrupted.stdout
    assert "timings are compressed" in said
    assert said.index("look around from another terminal") < said.index("executions/s")
    after_stop = said[said.index("daemon stopped"):]
    assert "/docs" not in after_stop and "PROMPTD_URL" not in after_stop  # gone by then
    assert f"sqlite:///{interrupted.folder / 'promptd.db'}" in after_stop
    assert (interrupted.folder / "promptd.db").exists()


def test_demo_headline_compares_like_with_like(interrupted: Interrupted) -> None:
    said = interrupted.stdout
    for prompt in ("support/answer", "sales/reply"):
        expected = re.search(rf"{prompt}: production .*\n.*expected success \(world model\): "
                             r"v(\d+) [\d.]+% -> v(\d+) [\d.]+%\n"
                             r".*measured success of v(\d+), its first [\d,]+ executions: "
                             r"[\d.]+%\n.*measured success of v(\d+), its last", said)
        assert expected is not None, said
        base, final, first, last = expected.groups()
        assert (base, final) == (first, last)  # each side names the same version twice


def test_simulate_headline_shows_an_unchanged_production_as_unchanged(
        live: LiveDaemon) -> None:
    out = run(live, "simulate", "--duration", "6", "--rate", "60", "--agents", "2")
    assert out.returncode == 0, out.stderr[-3000:]
    for prompt in ("support/answer", "sales/reply"):
        head = re.search(rf"{prompt}: production stayed v1\n.*expected success \(world model\): "
                         r"v1 ([\d.]+)% -> v1 ([\d.]+)%\n"
                         r".*measured success of v1, its first [\d,]+ executions: [\d.]+%\n"
                         r".*measured success of v1, its last [\d,]+ executions: [\d.]+%",
                         out.stdout)
        assert head is not None, out.stdout
        assert head.group(1) == head.group(2)  # the same text, the same expectation


def test_simulate_runs_the_world_it_is_given(live: LiveDaemon) -> None:
    expected = {name: World.named(name, 7).expected_success(base_text(LOOP_PROMPT))
                for name in WORLDS}
    assert expected["support-v1"] != expected["support-v2"]  # the line tells them apart
    out = run(live, "simulate", "--world", "support-v2", "--duration", "3", "--rate", "30",
              "--agents", "1")
    assert out.returncode == 0, out.stderr[-3000:]
    said = " ".join(line.removeprefix(SIMULATION_TAG).strip() for line in out.stdout.splitlines())
    assert "in world support-v2" in said
    assert f"{LOOP_PROMPT} {expected['support-v2']:.1%}" in said
    bad = run(live, "simulate", "--world", "support-v3")
    assert bad.returncode == 2 and "support-v1" in bad.stderr and "support-v2" in bad.stderr
