"""Proven against the real thing: promtool on ops/, and a real Prometheus scraping promptd.

A Prometheus on loopback scrapes a live promptd every second while the scenario drives it
through ingest, mining, a canary rolled back on SRM and a promoted deployment; then every
dashboard query must return data, and the rollback alerts must fire.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.ops.artifacts import (
    PROMETHEUS_CONFIG,
    RULE_TESTS,
    RULES,
    dashboard_queries,
    load_dashboard,
)
from tests.ops.conftest import PrometheusTools
from tests.ops.scenario import PROMPT, SETTINGS, ScenarioResult, run_scenario
from tests.support import LiveDaemon, free_port, live_daemon

# The real server and the scenario under it take ~25 s together.
pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

SCRAPE_SECONDS = 1
# What Grafana would put in place of its built-in variables for a short, recent range.
RATE_INTERVAL = "30s"


def _promtool(tools: PrometheusTools, *args: str, stdin: str | None = None
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tools.promtool, *args], input=stdin, capture_output=True, text=True,
                          timeout=60)


def test_promtool_accepts_the_shipped_config_and_rules(prometheus_tools: PrometheusTools) -> None:
    config = _promtool(prometheus_tools, "check", "config", str(PROMETHEUS_CONFIG))
    assert config.returncode == 0, config.stdout + config.stderr
    assert "1 rule files found" in config.stdout
    rules = _promtool(prometheus_tools, "check", "rules", str(RULES))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS: 7 rules found" in rules.stdout


def test_alert_rules_pass_their_promtool_unit_tests(prometheus_tools: PrometheusTools) -> None:
    done = _promtool(prometheus_tools, "test", "rules", str(RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_promtool_unit_tests_catch_a_broken_rule(prometheus_tools: PrometheusTools,
                                                 tmp_path: Path) -> None:
    # Without the _created clause the first rollback of a prompt goes unnoticed: the rule
    # tests must say so (they are not vacuous).
    broken = RULES.read_text().replace(
        "sum without () (promptd_rollbacks_created > time() - 900)", "vector(0) == 1")
    assert broken != RULES.read_text()
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "rules" / RULES.name).write_text(broken)
    shutil.copy(RULE_TESTS, tmp_path / "tests" / RULE_TESTS.name)
    done = _promtool(prometheus_tools, "test", "rules", str(tmp_path / "tests" / RULE_TESTS.name))
    assert done.returncode != 0
    assert "rollback fires on the first rollback of a prompt" in done.stdout + done.stderr


# -- a real Prometheus scraping a real promptd -----------------------------------------------


@dataclass(frozen=True)
class Scraped:
    """A Prometheus that scraped a promptd through the scenario."""

    prometheus: str
    live: LiveDaemon
    result: ScenarioResult
    started: float
    exposition: str

    def query_range(self, expr: str) -> list[dict[str, Any]]:
        """Return the series a range query over the scenario's time answers."""
        r = httpx.get(f"{self.prometheus}/api/v1/query_range", params={
            "query": expr, "start": self.started, "end": time.time(), "step": SCRAPE_SECONDS},
            timeout=10)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", (expr, body)
        return list(body["data"]["result"])


def _scrape_config(target: str) -> str:
    # The shipped config, pointed at the test daemon and made fast.
    text = PROMETHEUS_CONFIG.read_text()
    replacements = {"127.0.0.1:8077": target, "scrape_interval: 15s": "scrape_interval: 1s",
                    "evaluation_interval: 15s": "evaluation_interval: 1s",
                    "rules/promptd-alerts.yml": str(RULES)}
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


def _wait_for(what: str, check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"timed out waiting for {what}")


def _instant(prometheus: str, expr: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    return list(r.json()["data"]["result"])


@pytest.fixture(scope="module")
def scraped(prometheus_tools: PrometheusTools) -> Iterator[Scraped]:
    """Prometheus on loopback scraping a live promptd through the scenario."""
    workdir = Path(tempfile.mkdtemp(prefix="promptd-prometheus-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        with live_daemon(workdir / "daemon", **SETTINGS) as live:
            port = free_port()
            config = workdir / "prometheus.yml"
            config.write_text(_scrape_config(f"127.0.0.1:{live.settings.port}"))
            url = f"http://127.0.0.1:{port}"
            with open(workdir / "prometheus.log", "wb") as log:
                proc = subprocess.Popen([
                    prometheus_tools.prometheus, f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                    stdout=log, stderr=log, cwd=workdir)
            _wait_for("Prometheus ready",
                      lambda: httpx.get(f"{url}/-/ready", timeout=1).status_code == 200)
            _wait_for("a first scrape of promptd", lambda: any(
                s["value"][1] == "1" for s in _instant(url, 'up{job="promptd"}')))
            started = time.time() - 2 * SCRAPE_SECONDS
            result = run_scenario(live, pause=1.5 * SCRAPE_SECONDS)
            # Let a few scrapes and rule evaluations see the final state.
            time.sleep(4 * SCRAPE_SECONDS)
            exposition = httpx.get(f"{live.url}/metrics").text
            yield Scraped(url, live, result, started, exposition)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        shutil.rmtree(workdir, ignore_errors=True)


def _substitute(expr: str, range_seconds: int) -> str:
    # What Grafana does before sending a query: the multi-value $prompt becomes a regex of
    # escaped names; the interval variables become durations.
    prompt = re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\\\1", PROMPT)
    values = {"prompt": prompt, "__rate_interval": RATE_INTERVAL,
              "__interval": f"{SCRAPE_SECONDS}s", "__range": f"{range_seconds}s",
              "__range_s": str(range_seconds)}
    out = re.sub(r"\$\{(\w+)\}|\$(\w+)",
                 lambda m: values[m.group(1) or m.group(2)], expr)
    assert "$" not in out, out
    return out


def _has_a_number(series: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(v)) for s in series for _, v in s["values"])


def test_every_dashboard_query_returns_data_from_prometheus(scraped: Scraped) -> None:
    span = int(time.time() - scraped.started) + 1
    empty = []
    for query in dashboard_queries():
        series = scraped.query_range(_substitute(query.expr, span))
        if not series or not _has_a_number(series):
            empty.append(f"{query.user}: {query.expr}")
    assert empty == [], "queries without data:\n" + "\n".join(empty)


def test_prompt_variable_lists_the_exercised_prompt(scraped: Scraped) -> None:
    variable = next(v for v in load_dashboard()["templating"]["list"] if v["name"] == "prompt")
    metric = re.fullmatch(r"label_values\((\w+), prompt\)", variable["definition"])
    assert metric is not None
    r = httpx.get(f"{scraped.prometheus}/api/v1/label/prompt/values",
                  params={"match[]": metric.group(1), "start": scraped.started})
    assert r.json()["data"] == [PROMPT]


def test_annotations_mark_the_promotion_and_the_rollback(scraped: Scraped) -> None:
    span = int(time.time() - scraped.started) + 1
    annotations = {a["name"]: a["expr"] for a in load_dashboard()["annotations"]["list"]
                   if "expr" in a}
    promoted = scraped.query_range(_substitute(annotations["Promotions"], span))
    rolled_back = scraped.query_range(_substitute(annotations["Rollbacks"], span))
    assert [s["metric"] for s in promoted] == [{"prompt": PROMPT, "reason": "admin"}]
    assert [s["metric"] for s in rolled_back] == [{"prompt": PROMPT, "reason": "srm"}]


def test_rollback_and_srm_alerts_fire_after_the_srm_rollback(scraped: Scraped) -> None:
    def firing() -> dict[str, dict[str, str]]:
        alerts = httpx.get(f"{scraped.prometheus}/api/v1/alerts").json()["data"]["alerts"]
        return {a["labels"]["alertname"]: a["labels"] for a in alerts if a["state"] == "firing"}

    _wait_for("the rollback alerts", lambda: {"PromptdRollback", "PromptdSRMDetected"}
              <= set(firing()), timeout=10)
    now = firing()
    assert now["PromptdRollback"]["prompt"] == PROMPT
    assert now["PromptdRollback"]["reason"] == "srm"
    assert now["PromptdSRMDetected"]["prompt"] == PROMPT
    assert "PromptdDown" not in now


def test_alert_rules_load_into_prometheus_with_runbooks(scraped: Scraped) -> None:
    groups = httpx.get(f"{scraped.prometheus}/api/v1/rules").json()["data"]["groups"]
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == 7 and all(r["health"] == "ok" for r in rules), rules
    for rule in rules:
        assert len(rule["annotations"]["runbook"]) > 100, rule["name"]
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["name"]


def test_scheduler_metrics_keep_their_job_name_label_through_the_scrape(scraped: Scraped) -> None:
    series = _instant(scraped.prometheus, "promptd_job_runs_total")
    assert {s["metric"]["job_name"] for s in series} == {"mine", "improve", "canary"}
    assert {s["metric"]["job"] for s in series} == {"promptd"}
    assert not any("exported_job" in s["metric"] for s in series)


def test_promtool_check_metrics_finds_no_problem(prometheus_tools: PrometheusTools,
                                                 scraped: Scraped) -> None:
    done = _promtool(prometheus_tools, "check", "metrics", stdin=scraped.exposition)
    assert done.returncode == 0 and done.stdout.strip() == "", done.stdout + done.stderr
    assert done.stderr.strip() == "", done.stderr
