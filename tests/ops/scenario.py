"""A short burst of real traffic that makes a live promptd export every metric family it has.

It drives the whole loop through the HTTP API: resolves and executions, failures with
corrections, a duplicate and a rejected batch, mining, the improver's canary (rolled back on
a sample-ratio mismatch), and a hand-made version promoted by an admin.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

import httpx

from service.contract.ids import uuid7
from tests.service.traffic import run_traffic
from tests.support import LiveDaemon

PROMPT = "support/triage"
UNKNOWN_PROMPT = "no-such/prompt"
# Small steps and sample minimums so one burst reaches real canary decisions.
CANARY_POLICY: dict[str, Any] = {"steps": [50, 100], "min_samples_per_step": 50,
                                 "min_step_seconds": 0, "analysis_interval_seconds": 0.001}
SETTINGS: dict[str, Any] = {"improve_min_pattern_size": 3, "improve_min_pattern_share": 0.0,
                            "improve_cooldown_s": 0.0, "canary_policy": CANARY_POLICY}
COMPLAINTS = {
    "format": ["the date is not in ISO format", "dates must use ISO 8601 format",
               "wrong date format, expected YYYY-MM-DD"],
    "citation": ["answer is missing a citation", "no citation to the policy document",
                 "cite the source policy"],
}


@dataclass(frozen=True)
class ScenarioResult:
    """What the burst did, for tests to check against the metrics."""

    srm_deployment: str
    promoted_deployment: str
    promoted_version: int
    candidate_versions: tuple[int, ...]


def _ok(response: httpx.Response) -> dict[str, Any]:
    response.raise_for_status()
    return dict(response.json())


def _failures_with_corrections(n: int, seed: int, version: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for i in range(n):
        eid = uuid7()
        category = rng.choice(sorted(COMPLAINTS))
        events.append({"type": "execution", "event_id": eid, "prompt": PROMPT, "version": version,
                       "success": False, "latency_ms": 900.0, "cost_usd": 0.004,
                       "error_type": "timeout" if i % 5 == 0 else None,
                       "input_text": f"ticket {i}", "output_text": f"answer {i}",
                       "variables": {"ticket": f"T-{i}"}})
        events.append({"type": "correction", "event_id": uuid7(), "execution_id": eid,
                       "prompt": PROMPT,
                       "version": version, "category": category,
                       "reason": rng.choice(COMPLAINTS[category]),
                       "corrected_output": f"fixed answer {i}", "severity": "high"})
    return events


def _export_spans(live: LiveDaemon, token: str) -> None:
    """Export GenAI spans through the OpenTelemetry SDK: mapped, ignored, rejected, judged."""
    from tests.e2e.otlp_clients import agent_provider, exporter

    traced = agent_provider(exporter(live.url, token))
    tracer = traced.provider.get_tracer("scenario")
    chat = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.usage.input_tokens": 40, "gen_ai.usage.output_tokens": 8}
    for i in range(5):
        tracer.start_span("chat", attributes={
            **chat, "gen_ai.prompt.name": PROMPT, "gen_ai.prompt.version": "1",
            "gen_ai.evaluation.name": "helpful", "gen_ai.evaluation.score.value": 0.9,
            "session.id": f"otel-{i}"}).end()
    tracer.start_span("chat", attributes=chat).end()  # no prompt identity: ignored
    tracer.start_span("chat", attributes={**chat, "gen_ai.prompt.name": UNKNOWN_PROMPT,
                                          "gen_ai.prompt.version": "1"}).end()  # rejected
    traced.flush()
    traced.provider.shutdown()


def _misreported_arms(deployment: dict[str, Any], n: int) -> list[dict[str, Any]]:
    # Agents that report control and c1 half and half while c2 and c3 hold a quarter of the
    # traffic between them: the sample-ratio check must catch it.
    versions = {a["name"]: a["version"] for a in deployment["arms"]}
    return [{"type": "execution", "prompt": PROMPT, "version": versions[arm],
             "deployment": deployment["deployment_id"], "arm": arm, "subject": f"s-{i}",
             "success": True, "latency_ms": 400.0, "cost_usd": 0.001}
            for i in range(n) for arm in (("control", "c1")[i % 2],)]


def run_scenario(live: LiveDaemon, *, pause: float = 0.0) -> ScenarioResult:
    """Drive ``live`` through the loop once; ``pause`` seconds separate the phases."""
    live.create_prompt(PROMPT, "Triage {{ ticket }}")
    admin = live.client()
    agent = live.client(live.issue("agent"))

    # Counters only show a rate once a series grows between two scrapes, so each kind of
    # event arrives in two waves ``pause`` apart.
    run_traffic(agent, PROMPT, 60, {1: 0.8}, seed=1)
    failures = _failures_with_corrections(30, seed=2)
    _ok(agent.post("/v1/events", json={"events": failures}))
    agent_token = agent.headers["authorization"].removeprefix("Bearer ")
    _export_spans(live, agent_token)
    time.sleep(pause)
    run_traffic(agent, PROMPT, 60, {1: 0.8}, seed=2)
    _export_spans(live, agent_token)
    _ok(agent.post("/v1/events", json={"events": _failures_with_corrections(30, seed=3)}))
    assert _ok(agent.post("/v1/events", json={"events": failures}))["duplicates"] == 60
    rejected = agent.post("/v1/events", json={"events": [
        {"type": "execution", "prompt": UNKNOWN_PROMPT, "version": 1, "success": True}]})
    assert rejected.status_code == 422, rejected.text
    time.sleep(pause)

    assert _ok(admin.post("/v1/jobs/mine"))["result"] == 1
    assert _ok(admin.post("/v1/jobs/improve"))["result"] >= 1
    deployment = _ok(admin.get("/v1/deployments"))["deployments"][0]
    candidates = tuple(a["version"] for a in deployment["arms"] if a["name"] != "control")
    run_traffic(agent, PROMPT, 120, dict.fromkeys((1, *candidates), 0.8), seed=3)
    time.sleep(pause)

    _ok(agent.post("/v1/events", json={"events": _misreported_arms(deployment, 1000)}))
    assert _ok(admin.post("/v1/jobs/canary"))["result"] == 1
    srm = _ok(admin.get(f"/v1/deployments/{deployment['deployment_id']}"))
    assert srm["phase"] == "rolled_back" and "sample-ratio" in srm["outcome_reason"], srm
    time.sleep(pause)

    version = _ok(admin.post(f"/v1/prompts/{PROMPT}/versions",
                             json={"template": "Triage {{ ticket }} and cite the policy."}))
    manual = _ok(admin.post("/v1/deployments", json={
        "prompt": PROMPT, "versions": [version["version"]], "policy": CANARY_POLICY}))
    # Every job runs a second time, in another scrape interval than the first, so rates of
    # the job histograms are non-zero; none of these runs may change the deployment.
    _ok(admin.post("/v1/jobs/mine"))
    assert _ok(admin.post("/v1/jobs/improve"))["result"] == 0  # one deployment at a time
    assert _ok(admin.post("/v1/jobs/canary"))["result"] == 0  # no samples yet
    run_traffic(agent, PROMPT, 120, {1: 0.8, version["version"]: 0.85}, seed=4)
    time.sleep(pause)
    dep_url = f"/v1/deployments/{manual['deployment_id']}"
    for _ in range(len(CANARY_POLICY["steps"])):
        if _ok(admin.get(dep_url))["phase"] != "promoted":
            _ok(admin.post(f"{dep_url}/promote"))
    assert _ok(admin.get(dep_url))["phase"] == "promoted"
    run_traffic(agent, PROMPT, 30, {version["version"]: 0.85}, seed=5)
    # Series of versions that stopped being live are retired from /metrics, so the quality
    # panels need corrections on the version now in production too.
    for wave in (6, 7):  # two waves: a rate needs the series to grow between scrapes
        _ok(agent.post("/v1/events", json={
            "events": _failures_with_corrections(5, seed=wave, version=version["version"])}))
        time.sleep(pause)
    run_traffic(agent, PROMPT, 30, {version["version"]: 0.85}, seed=6)
    return ScenarioResult(deployment["deployment_id"], manual["deployment_id"],
                          version["version"], candidates)
