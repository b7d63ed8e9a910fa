"""Label values on /metrics stay bounded whatever agents and admins send."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from service.contract.ids import uuid7
from service.runtime.metrics import MAX_CATEGORIES_PER_PROMPT
from tests.ops.conftest import Exercised
from tests.ops.scenario import PROMPT, UNKNOWN_PROMPT
from tests.support import live_daemon


def _label_values(exposition: str, label: str) -> set[str]:
    return {s.labels[label] for f in text_string_to_metric_families(exposition)
            for s in f.samples if label in s.labels}


def test_unknown_prompt_names_never_become_label_values(exercised: Exercised) -> None:
    agent = exercised.live.client(exercised.live.issue("agent"))
    assert agent.get(f"/v1/prompts/{UNKNOWN_PROMPT}/resolve").status_code == 404
    assert agent.post("/v1/corrections", json={
        "execution_id": uuid7(), "prompt": UNKNOWN_PROMPT, "version": 1,
        "category": "tone"}).status_code == 422
    exposition = httpx.get(f"{exercised.live.url}/metrics").text
    assert _label_values(exposition, "prompt") == {PROMPT}
    assert UNKNOWN_PROMPT not in exposition
    assert 'promptd_events_ingested_total{result="rejected",type="correction"}' in exposition


def test_admin_decisions_are_labelled_admin_never_with_the_token_id(exercised: Exercised) -> None:
    decisions = ("promptd_promotions", "promptd_rollbacks")  # OTLP spans have reasons too
    reasons = {s.labels["reason"] for f in text_string_to_metric_families(exercised.exposition)
               if f.name in decisions for s in f.samples if "reason" in s.labels}
    assert reasons == {"admin", "srm"}  # the hand promotion, the SRM rollback
    assert "token:" not in exercised.exposition


def test_http_requests_are_labelled_by_route_template_not_by_prompt_path(
        exercised: Exercised) -> None:
    live, result = exercised.live, exercised.result
    stray = f"/no/such/path/{uuid7()}"
    httpx.get(f"{live.url}{stray}")
    routes = _label_values(httpx.get(f"{live.url}/metrics").text, "route")
    assert {"/v1/prompts/{name:path}/resolve", "/v1/deployments/{deployment_id}",
            "unmatched"} <= routes
    for concrete in (PROMPT, result.srm_deployment, result.promoted_deployment, stray):
        assert not any(concrete in r for r in routes), concrete


def test_correction_categories_beyond_the_cap_are_counted_as_other(tmp_path: Path) -> None:
    with live_daemon(tmp_path) as live:
        live.create_prompt(PROMPT, "Triage {{ ticket }}")
        agent = live.client(live.issue("agent"))
        n = MAX_CATEGORIES_PER_PROMPT + 5
        ids = [uuid7() for _ in range(n)]  # a correction follows its execution
        events = [event for i, eid in enumerate(ids) for event in (
            {"type": "execution", "event_id": eid, "prompt": PROMPT, "version": 1,
             "success": False},
            {"type": "correction", "execution_id": eid, "prompt": PROMPT, "version": 1,
             "category": f"category-{i:02d}"})]
        agent.post("/v1/events", json={"events": events}).raise_for_status()
        exposition = httpx.get(f"{live.url}/metrics").text
    samples = {s.labels["category"]: s.value for f in text_string_to_metric_families(exposition)
               if f.name == "promptd_corrections_by_category" for s in f.samples
               if s.name.endswith("_total")}
    assert len(samples) == MAX_CATEGORIES_PER_PROMPT + 1
    assert samples["other"] == n - MAX_CATEGORIES_PER_PROMPT
    assert sum(samples.values()) == n
