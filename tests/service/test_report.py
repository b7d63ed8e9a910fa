"""`promptd report`: every prompt over a window, against a daemon whose clock the test moves."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from statsmodels.stats.proportion import proportion_confint

from service.cli.report import CSV_COLUMNS
from service.server import EmbeddedServer, build
from tests.service.test_cli import run
from tests.support import LiveDaemon, make_settings

DAY = 86_400.0
NOW = 1_780_000_000.0


@dataclass
class Clock:
    """The daemon's clock: the test sets the time events are recorded at."""

    now: float

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDaemon]:
    """A daemon holding ten days of two prompts' traffic and decisions."""
    tmp = tmp_path_factory.mktemp("report")
    clock = Clock(NOW - 10 * DAY)
    settings = make_settings(tmp)
    service = build(settings, registry=CollectorRegistry(), clock=clock)
    server = EmbeddedServer(service).start()
    live = LiveDaemon(server.url, settings.token_file.read_text().strip(), service.daemon,
                      settings, server)
    try:
        admin, agent = live.client(), live.client(live.issue("agent"))
        for name in ("alpha", "beta"):
            admin.post("/v1/prompts", json={"name": name, "template": f"{name} {{{{ q }}}}"}
                       ).raise_for_status()
        _traffic(agent, "alpha", 1, n=50, successes=50, corrections=0)  # before the window
        clock.now = NOW - 2 * DAY
        _traffic(agent, "alpha", 1, n=200, successes=150, corrections=20)
        _traffic(agent, "beta", 1, n=100, successes=40, corrections=5)
        for name in ("alpha", "beta"):
            admin.post(f"/v1/prompts/{name}/versions",
                       json={"template": f"{name} v2 {{{{ q }}}}"}).raise_for_status()
        dep = admin.post("/v1/deployments", json={"prompt": "alpha", "versions": [2]}).json()
        admin.post(f"/v1/deployments/{dep['deployment_id']}/promote",
                   json={"full": True, "reason": "shipped by hand"}).raise_for_status()
        clock.now = NOW - DAY
        _traffic(agent, "alpha", 2, n=100, successes=90, corrections=2)
        admin.post("/v1/deployments", json={"prompt": "beta", "versions": [2]}
                   ).raise_for_status()
        admin.post("/v1/prompts/beta/rollback", json={"reason": "too risky"}
                   ).raise_for_status()
        clock.now = NOW
        yield live
    finally:
        live.stop()


def _traffic(agent: httpx.Client, prompt: str, version: int, *, n: int, successes: int,
             corrections: int) -> None:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    agent.post("/v1/events", json={"events": [
        {"type": "execution", "event_id": i, "prompt": prompt, "version": version,
         "success": k < successes, "latency_ms": 500.0, "cost_usd": 0.001}
        for k, i in enumerate(ids)]}).raise_for_status()
    if not corrections:
        return
    agent.post("/v1/events", json={"events": [
        {"type": "correction", "execution_id": i, "prompt": prompt, "version": version,
         "category": "format", "reason": "the date is not in ISO format"}
        for i in ids[:corrections]]}).raise_for_status()


def _report(live: LiveDaemon, *args: str) -> dict[str, Any]:
    out = run(live, "report", *args, "--format", "json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def _version(report: dict[str, Any], prompt: str, version: int) -> dict[str, Any]:
    [p] = [p for p in report["prompts"] if p["prompt"] == prompt]
    [v] = [v for v in p["versions"] if v["version"] == version]
    return v  # type: ignore[no-any-return]


def test_rates_per_version_count_only_the_window_with_wilson_intervals(
        history: LiveDaemon) -> None:
    report = _report(history, "--since", "7d")
    v1 = _version(report, "alpha", 1)
    assert (v1["executions"], v1["successes"], v1["corrections"]) == (200, 150, 20)
    assert v1["success"]["rate"] == pytest.approx(0.75)
    # An independent implementation of the interval the report claims.
    assert v1["success"]["ci"] == pytest.approx(
        list(proportion_confint(150, 200, alpha=0.05, method="wilson")), abs=1e-12)
    assert v1["correction"]["ci"] == pytest.approx(
        list(proportion_confint(20, 200, alpha=0.05, method="wilson")), abs=1e-12)
    assert v1["cost_per_success_usd"] == pytest.approx(200 * 0.001 / 150)
    assert v1["mean_latency_ms"] == pytest.approx(500.0)
    assert _version(report, "alpha", 2)["production"] is True and not v1["production"]
    longer = _report(history, "--since", "30d")
    assert _version(longer, "alpha", 1)["executions"] == 250


def test_report_ranks_prompts_and_says_what_shipped_and_what_was_decided(
        history: LiveDaemon) -> None:
    report = _report(history, "--since", "7d")
    assert [r["prompt"] for r in report["top"]] == ["alpha", "beta"]  # 240/300 vs 40/100
    assert [r["prompt"] for r in report["bottom"]] == ["beta", "alpha"]
    alpha, beta = report["prompts"]
    assert (alpha["production_at_start"], alpha["production"]) == (1, 2)
    [shipped] = alpha["shipped"]
    assert (shipped["version"], shipped["previous"], shipped["kind"]) == (2, 1, "promotion")
    assert alpha["decisions"]["deployment.promoted"] == 1
    [ended] = beta["deployments_ended"]
    assert ended["outcome"] == "rolled_back" and ended["versions"] == [2]
    assert "too risky" in ended["reason"]
    assert report["totals"] == {"prompts": 2, "executions": 400, "corrections": 27,
                                "versions_shipped": 1, "promotions": 1, "rollbacks": 1}
    only = _report(history, "beta")
    assert [p["prompt"] for p in only["prompts"]] == ["beta"]


def test_report_as_csv_is_one_plain_row_per_version(history: LiveDaemon) -> None:
    out = run(history, "report", "--format", "csv")
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(r["prompt"], r["version"]) for r in rows] == [("alpha", "1"), ("alpha", "2"),
                                                          ("beta", "1")]
    assert float(rows[0]["success_rate"]) == pytest.approx(0.75)
    assert float(rows[0]["success_low"]) == pytest.approx(
        proportion_confint(150, 200, method="wilson")[0], abs=1e-12)


def test_report_as_markdown_reads_as_a_document(history: LiveDaemon) -> None:
    out = run(history, "report", "--since", "7d")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert text.startswith("# promptd report:")
    assert text.index("## Prompts by success rate") < text.index("## `alpha`") < text.index(
        "## `beta`")
    assert "Production: v1 -> v2." in text and "v2 to production (promotion" in text
    assert "| v1 | 200 | 75.0% [" in text and "rolled_back v2" in text


def test_report_refuses_a_window_it_cannot_read(history: LiveDaemon) -> None:
    out = run(history, "report", "--since", "last week")
    assert out.returncode == 1 and "since" in out.stderr and len(out.stderr.splitlines()) == 1


def test_a_new_read_model_catches_up_on_an_existing_log(tmp_path: Path) -> None:
    # A log written before version_hours existed: the projection folds it from position 0.
    settings = make_settings(tmp_path)
    service = build(settings, registry=CollectorRegistry(), clock=Clock(time.time()))
    server = EmbeddedServer(service).start()
    live = LiveDaemon(server.url, settings.token_file.read_text().strip(), service.daemon,
                      settings, server)
    try:
        live.create_prompt("gamma", "g {{ q }}")
        _traffic(live.client(live.issue("agent")), "gamma", 1, n=10, successes=7,
                 corrections=1)
        with service.daemon.write_engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM version_hours")
            conn.exec_driver_sql(
                "DELETE FROM projection_positions WHERE name = 'version_hours'")
    finally:
        live.stop()
    service = build(settings, registry=CollectorRegistry())
    server = EmbeddedServer(service).start()
    live = LiveDaemon(server.url, settings.token_file.read_text().strip(), service.daemon,
                      settings, server)
    try:
        v1 = _version(_report(live), "gamma", 1)
        assert (v1["executions"], v1["successes"], v1["corrections"]) == (10, 7, 1)
    finally:
        live.stop()
