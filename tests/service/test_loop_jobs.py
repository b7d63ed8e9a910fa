"""Mining and improve jobs on a live daemon: patterns, candidates, their deployment."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.contract.ids import uuid7
from tests.service.test_cli import run
from tests.support import LiveDaemon, live_daemon

COMPLAINTS = {
    "format": ["the date is not in ISO format", "dates must use ISO 8601 format",
               "wrong date format, expected YYYY-MM-DD", "please write the date in ISO format"],
    "citation": ["answer is missing a citation", "no citation to the policy document",
                 "cite the source policy", "the reply has no citation of the policy"],
}


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[LiveDaemon]:
    with live_daemon(tmp_path, improve_min_pattern_size=3, improve_min_pattern_share=0.0,
                     improve_cooldown_s=0.0) as live:
        yield live


def _traffic_with_corrections(live: LiveDaemon, prompt: str, version: int = 1,
                              n: int = 120, seed: int = 0) -> None:
    rng = random.Random(seed)
    agent = live.client(live.issue("agent"))
    events = []
    for i in range(n):
        eid = uuid7()
        failed = i % 3 == 0
        events.append({"type": "execution", "event_id": eid, "prompt": prompt,
                       "version": version, "success": not failed, "latency_ms": 200.0,
                       "input_text": f"ticket {i}", "output_text": f"answer {i}",
                       "variables": {"ticket": f"T-{i}"}})
        if failed:
            category = rng.choice(sorted(COMPLAINTS))
            events.append({"type": "correction", "execution_id": eid, "prompt": prompt,
                           "version": version, "category": category,
                           "reason": rng.choice(COMPLAINTS[category]),
                           "corrected_output": f"fixed answer {i}", "severity": "high"})
    agent.post("/v1/events", json={"events": events}).raise_for_status()


def test_mining_appends_a_snapshot_only_when_there_is_something_new(loop: LiveDaemon) -> None:
    loop.create_prompt("support/triage", "Triage {{ ticket }}")
    admin = loop.client()
    assert admin.post("/v1/jobs/mine").json()["result"] == 0  # no failures: nothing appended
    _traffic_with_corrections(loop, "support/triage")
    assert admin.post("/v1/jobs/mine").json()["result"] == 1
    assert admin.post("/v1/jobs/mine").json()["result"] == 0  # nothing new since
    patterns = admin.get("/v1/prompts/support/triage/patterns").json()["patterns"]
    labels = " ".join(p["label"] for p in patterns)
    assert "citation" in labels and ("iso" in labels or "date" in labels or "format" in labels)
    top = patterns[0]
    assert top["size"] >= 10 and top["examples"] and "centroid" not in top
    out = run(loop, "patterns", "support/triage")
    assert out.returncode == 0 and "citation" in out.stdout
    metrics = httpx.get(f"{loop.url}/metrics").text
    assert 'promptd_patterns_active{prompt="support/triage"}' in metrics
    assert 'promptd_job_runs_total{job_name="mine",result="success"} 3.0' in metrics


def test_improve_proposes_candidates_and_starts_their_canary(loop: LiveDaemon) -> None:
    loop.create_prompt("support/triage", "Triage {{ ticket }}")
    loop.create_prompt("quiet/prompt", "Say {{ x }}")
    admin = loop.client()
    _traffic_with_corrections(loop, "support/triage")
    admin.post("/v1/jobs/mine").raise_for_status()
    assert admin.post("/v1/jobs/improve").json()["result"] >= 1
    cands = admin.get("/v1/prompts/support/triage/candidates").json()["candidates"]
    assert cands and all(c["status"] == "in_canary" for c in cands)
    assert all(c["rationale"] and c["addressed_patterns"] for c in cands)
    assert admin.get("/v1/prompts/quiet/prompt/candidates").json()["candidates"] == []
    deps = admin.get("/v1/deployments").json()["deployments"]
    assert len(deps) == 1 and deps[0]["prompt"] == "support/triage"
    assert deps[0]["machine_written"] is True
    version = cands[0]["version"]
    shown = admin.get(f"/v1/prompts/support/triage/versions/{version}").json()
    assert "{{ ticket }}" in shown["template"] and shown["author"] == "promptd:improver"
    diff = run(loop, "diff", "support/triage", "1", str(version))
    assert diff.returncode == 0 and shown["strategy"] in diff.stdout
    # While the deployment runs, the improver leaves the prompt alone.
    assert admin.post("/v1/jobs/improve").json()["result"] == 0
    listed = run(loop, "candidates", "support/triage")
    assert str(version) in listed.stdout and "in_canary" in listed.stdout


def test_rejected_candidate_texts_are_never_proposed_again(loop: LiveDaemon) -> None:
    loop.create_prompt("support/triage", "Triage {{ ticket }}")
    admin = loop.client()
    _traffic_with_corrections(loop, "support/triage")
    admin.post("/v1/jobs/mine").raise_for_status()
    admin.post("/v1/jobs/improve").raise_for_status()
    dep = admin.get("/v1/deployments").json()["deployments"][0]
    admin.post(f"/v1/deployments/{dep['deployment_id']}/rollback").raise_for_status()
    first = {c["version"]: c for c in admin.get("/v1/candidates").json()["candidates"]}
    assert all(c["status"] == "rolled_back" for c in first.values())
    texts = {admin.get(f"/v1/prompts/support/triage/versions/{v}").json()["template"]
             for v in first}
    admin.post("/v1/jobs/improve").raise_for_status()
    second = [c for c in admin.get("/v1/candidates").json()["candidates"]
              if c["version"] not in first]
    for c in second:
        text = admin.get(f"/v1/prompts/support/triage/versions/{c['version']}").json()["template"]
        assert text not in texts
    history = json.loads(run(loop, "history", "support/triage", "--json").stdout)["history"]
    assert [h["type"] for h in history].count("deployment.rolled_back") == 1


def test_the_llm_rewriter_runs_when_configured_and_its_candidate_is_deployed(
    tmp_path: Path,
) -> None:
    from tests.improver.llm_stub import serve_llm_stub

    with serve_llm_stub() as stub, live_daemon(
        tmp_path, improve_min_pattern_size=3, improve_min_pattern_share=0.0,
        improve_cooldown_s=0.0, llm_base_url=stub.base_url, llm_model="stub-model",
        gate_cases=0,  # the rewriter alone here; the gate has its own tests
    ) as live:
        live.create_prompt("support/triage", "Triage {{ ticket }}")
        admin = live.client()
        _traffic_with_corrections(live, "support/triage")
        admin.post("/v1/jobs/mine").raise_for_status()
        admin.post("/v1/jobs/improve").raise_for_status()
        assert len(stub.control.requests) == 2  # critique, then edit
        assert stub.control.requests[0].body["model"] == "stub-model"
        cands = admin.get("/v1/prompts/support/triage/candidates").json()["candidates"]
        assert "llm_rewriter" in {c["strategy"] for c in cands}


def test_with_an_llm_only_candidates_that_win_the_offline_gate_reach_the_canary(
    tmp_path: Path,
) -> None:
    from tests.improver.llm_stub import serve_llm_stub

    with serve_llm_stub() as stub, live_daemon(
        tmp_path, improve_min_pattern_size=3, improve_min_pattern_share=0.0,
        improve_cooldown_s=0.0, llm_base_url=stub.base_url, llm_model="stub-model",
        gate_cases=8,
    ) as live:
        live.create_prompt("support/triage", "Triage {{ ticket }}")
        admin = live.client()
        _traffic_with_corrections(live, "support/triage")
        admin.post("/v1/jobs/mine").raise_for_status()
        admin.post("/v1/jobs/improve").raise_for_status()
        cands = admin.get("/v1/prompts/support/triage/candidates").json()["candidates"]
        gated = [c for c in cands if c["gate"] is not None]
        assert gated and len(gated) == len(cands)  # every candidate was judged offline
        judged = [r for r in stub.control.requests
                  if r.body["messages"][0]["content"].startswith("You compare two answers")]
        assert judged  # the gate asked the model for pairwise judgments
        passed = [c for c in cands if c["gate"]["passed"]]
        failed = [c for c in cands if not c["gate"]["passed"]]
        for c in passed:  # each won more replayed corrections than it lost
            assert c["gate"]["wins"] > c["gate"]["losses"] and c["status"] == "in_canary"
            assert "offline gate passed" in c["rationale"]
        for c in failed:
            assert c["status"] == "rejected" and "offline gate failed" in c["rationale"]
        live_deps = admin.get("/v1/deployments", params={"prompt": "support/triage"}).json()
        canaried = {a["version"] for d in live_deps["deployments"] for a in d["arms"]} - {1}
        assert canaried == {c["version"] for c in passed}
        assert passed, [c["rationale"] for c in cands]  # feedback candidates follow reviewers
        assert failed, [c["rationale"] for c in cands]  # a few-shot copy ties: not canaried


def test_an_admins_deployment_supersedes_a_machine_canary(loop: LiveDaemon) -> None:
    loop.create_prompt("support/triage", "Triage {{ ticket }}")
    admin = loop.client()
    _traffic_with_corrections(loop, "support/triage")
    admin.post("/v1/jobs/mine").raise_for_status()
    assert admin.post("/v1/jobs/improve").json()["result"] >= 1
    machine = admin.get("/v1/deployments", params={"prompt": "support/triage"}).json()
    (held,) = machine["deployments"]
    assert held["machine_written"]
    fix = admin.post("/v1/prompts/support/triage/versions",
                     json={"template": "Triage {{ ticket }}; dates in ISO 8601."}).json()
    r = admin.post("/v1/deployments", json={"prompt": "support/triage",
                                            "versions": [fix["version"]]})
    assert r.status_code == 201, r.text  # no waiting for the machine canary to finish
    ended = admin.get(f"/v1/deployments/{held['deployment_id']}").json()
    assert ended["phase"] == "superseded"
    assert r.json()["deployment_id"] in ended["outcome_reason"]
    history = admin.get("/v1/prompts/support/triage/history").json()["history"]
    superseded = next(h for h in history if h["type"] == "deployment.superseded")
    assert superseded["actor"].startswith("token:")  # the admin, not promptd
    cands = admin.get("/v1/prompts/support/triage/candidates").json()["candidates"]
    assert {c["status"] for c in cands} == {"superseded"}
    # A person's canary is never superseded by another person's: one at a time.
    again = admin.post("/v1/deployments", json={"prompt": "support/triage",
                                                "versions": [fix["version"]]})
    assert again.status_code == 409 and "one at a time" in again.json()["error"]["message"]
