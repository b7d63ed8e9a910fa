"""Fixtures for the ops tests: an exercised daemon, and Debian's Prometheus tools."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.ops.scenario import SETTINGS, ScenarioResult, run_scenario
from tests.support import LiveDaemon, live_daemon


@dataclass(frozen=True)
class Exercised:
    """A live daemon after the scenario, and its /metrics output at that moment."""

    live: LiveDaemon
    result: ScenarioResult
    exposition: str


@pytest.fixture(scope="session")
def exercised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exercised]:
    """A daemon driven once through the whole loop (shared: the scenario takes seconds)."""
    with live_daemon(tmp_path_factory.mktemp("exercised"), **SETTINGS) as live:
        result = run_scenario(live)
        yield Exercised(live, result, httpx.get(f"{live.url}/metrics").text)


@dataclass(frozen=True)
class PrometheusTools:
    """Paths of the ``prometheus`` and ``promtool`` binaries."""

    prometheus: str
    promtool: str


def _install_debian_prometheus() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"],
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", "prometheus"]):
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    # The package enables its own service; these tests run their own server on a free port
    # and must not leave the packaged one running.
    if Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "disable", "--now", "prometheus.service"],
                       capture_output=True, check=False)
    elif Path("/etc/init.d/prometheus").exists():
        subprocess.run(["/etc/init.d/prometheus", "stop"], capture_output=True, check=False)


@pytest.fixture(scope="session")
def prometheus_tools() -> PrometheusTools:
    """Return Prometheus and promtool, installing Debian's package once if they are missing."""
    if not (shutil.which("prometheus") and shutil.which("promtool")):
        _install_debian_prometheus()
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    assert prometheus and promtool, "prometheus/promtool not on PATH after installing"
    return PrometheusTools(prometheus, promtool)
