"""The evidence on /metrics is the canary's own: a real daemon, a running canary, a scrape."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from service.runtime.metrics import DEPLOYMENT_LABEL_CHARS
from tests.service.traffic import run_traffic
from tests.support import LiveDaemon

PROMPT = "support/triage"
# Two steps, no minimum time: a few hundred executions reach the last step's checks. A
# candidate as good as control, and a wide tolerance, so the next decision is "not yet shown
# non-inferior", whose evidence holds both the harm and the promotion rows.
POLICY = {"steps": [50, 100], "min_samples_per_step": 100, "min_step_seconds": 0,
          "analysis_interval_seconds": 0.001, "primary_tolerance": 0.2}


def _scrape(live: LiveDaemon, family: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Return the samples of one family on /metrics by their sorted labels."""
    text = httpx.get(f"{live.url}/metrics").text
    return {tuple(sorted(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) if f.name == family
            for s in f.samples}


def _effect(samples: dict[tuple[tuple[str, str], ...], float], arm: str, metric: str,
            bound: str) -> float | None:
    return {dict(k)["bound"]: v for k, v in samples.items()
            if dict(k)["arm"] == arm and dict(k)["metric"] == metric}.get(bound)


def _canary_at_last_step(live: LiveDaemon) -> tuple[httpx.Client, str]:
    live.create_prompt(PROMPT, "Triage {{ ticket }}")
    admin = live.client()
    agent = live.client(live.issue("agent"))
    admin.post(f"/v1/prompts/{PROMPT}/versions",
               json={"template": "Triage {{ ticket }} and cite the policy."}).raise_for_status()
    r = admin.post("/v1/deployments", json={"prompt": PROMPT, "versions": [2], "policy": POLICY})
    assert r.status_code == 201, r.text
    dep = str(r.json()["deployment_id"])
    run_traffic(agent, PROMPT, 400, {1: 0.8, 2: 0.8}, seed=1)
    admin.post(f"/v1/deployments/{dep}/promote").raise_for_status()  # to the last step
    run_traffic(agent, PROMPT, 800, {1: 0.8, 2: 0.8}, seed=2)
    return admin, dep


def test_effect_bounds_on_metrics_equal_the_next_decisions_evidence(live: LiveDaemon) -> None:
    admin, dep = _canary_at_last_step(live)
    shown = admin.get(f"/v1/deployments/{dep}").json()
    evidence: dict[str, Any] = shown["next_decision"]["evidence"]
    c1 = evidence["arms"]["c1"]
    assert "promotion" in c1, shown["next_decision"]  # the last step, its checks complete
    effects = _scrape(live, "promptd_deployment_effect")
    boundaries = _scrape(live, "promptd_deployment_boundary")
    labels = {dict(k)["deployment"] for k in effects}
    assert labels == {dep[:DEPLOYMENT_LABEL_CHARS]}
    assert {dict(k)["prompt"] for k in effects} == {PROMPT}
    compared = 0
    for metric, row in c1["metrics"].items():
        assert _effect(effects, "c1", metric, "estimate") == row["estimate"], metric
        for side in ("lower", "upper"):
            if row[side] is not None:  # the harm sequence's side of this metric
                assert _effect(effects, "c1", metric, side) == row[side], (metric, side)
                compared += 1
        harm = {dict(k)["kind"]: v for k, v in boundaries.items()
                if dict(k)["metric"] == metric}["harm"]
        assert harm == row["null"], metric
    assert compared == len(c1["metrics"])  # every watched metric has its harm bound
    promotion = c1["promotion"]
    assert _effect(effects, "c1", "success_rate", "lower") == promotion["lower"]
    assert {dict(k)["kind"]: v for k, v in boundaries.items()
            if dict(k)["metric"] == "success_rate"}["promotion"] == promotion["null"]


def test_effect_bounds_bracket_the_estimate(live: LiveDaemon) -> None:
    _canary_at_last_step(live)
    effects = _scrape(live, "promptd_deployment_effect")
    metrics = {dict(k)["metric"] for k in effects}
    assert {"success_rate", "error_rate", "latency"} <= metrics
    both = 0
    for metric in metrics:
        lower = _effect(effects, "c1", metric, "lower")
        estimate = _effect(effects, "c1", metric, "estimate")
        upper = _effect(effects, "c1", metric, "upper")
        assert estimate is not None, metric
        assert lower is None or lower < estimate, metric
        assert upper is None or estimate < upper, metric
        both += lower is not None and upper is not None
    assert both == 1  # the primary metric: harm's upper and promotion's lower bound


def test_series_vanish_when_the_deployment_ends(live: LiveDaemon) -> None:
    admin, dep = _canary_at_last_step(live)
    assert _scrape(live, "promptd_deployment_effect")
    assert _scrape(live, "promptd_deployment_boundary")
    admin.post(f"/v1/deployments/{dep}/rollback").raise_for_status()
    assert _scrape(live, "promptd_deployment_effect") == {}
    assert _scrape(live, "promptd_deployment_boundary") == {}
    families = httpx.get(f"{live.url}/metrics").text
    assert "# TYPE promptd_deployment_effect gauge" in families  # the family stays documented


def test_each_tick_with_new_data_records_its_evidence_and_replay_stays_equal(
        live: LiveDaemon) -> None:
    from service.projections.replay import replay

    admin, dep = _canary_at_last_step(live)
    agent = live.client(live.issue("agent"))

    def records() -> list[dict[str, Any]]:
        page = admin.get("/v1/events", params={"type": "canary.analysed",
                                               "stream": f"canary:{dep}"}).json()
        return [e["payload"] for e in page["events"]]

    seen = admin.get(f"/v1/deployments/{dep}").json()["next_decision"]["evidence"]
    admin.post("/v1/jobs/canary").raise_for_status()
    admin.post("/v1/jobs/canary").raise_for_status()  # nothing new: nothing recorded
    assert len(records()) == 1
    first = records()[0]
    assert first["step_index"] == 1 and first["deployment_id"] == dep
    row = seen["arms"]["c1"]["metrics"]["success_rate"]
    recorded = first["effects"]["c1"]["success_rate"]
    assert recorded["estimate"] == row["estimate"] and recorded["upper"] == row["upper"]
    assert recorded["lower"] == seen["arms"]["c1"]["promotion"]["lower"]
    assert first["boundaries"]["success_rate"] == {
        "harm": row["null"], "promotion": seen["arms"]["c1"]["promotion"]["null"]}
    run_traffic(agent, PROMPT, 200, {1: 0.8, 2: 0.8}, seed=3)
    admin.post("/v1/jobs/canary").raise_for_status()
    assert len(records()) == 2
    report = replay(live.settings.database_url)
    assert report.equal, [t for t in report.tables if not t.equal]
