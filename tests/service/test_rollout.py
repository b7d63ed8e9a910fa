"""Rollouts end to end on a real daemon: canary steps, promotion, rollback, admin gates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.traffic import run_traffic
from tests.support import LiveDaemon, live_daemon

FAST = {"min_samples_per_step": 150, "min_step_seconds": 0, "analysis_interval_seconds": 0.001,
        "max_samples_per_arm": 3000}


def _setup(live: LiveDaemon, *versions: str) -> tuple[httpx.Client, httpx.Client]:
    live.create_prompt("support/triage", "Triage {{ ticket }}")
    admin = live.client()
    for text in versions:
        admin.post("/v1/prompts/support/triage/versions", json={"template": text}
                   ).raise_for_status()
    return admin, live.client(live.issue("agent"))


def _deploy(admin: httpx.Client, versions: list[int], **policy: Any) -> dict[str, Any]:
    r = admin.post("/v1/deployments", json={"prompt": "support/triage", "versions": versions,
                                            "policy": {**FAST, **policy}})
    assert r.status_code == 201, r.text
    return dict(r.json())


def _tick(admin: httpx.Client) -> None:
    admin.post("/v1/jobs/canary").raise_for_status()


def _drive(admin: httpx.Client, agent: httpx.Client, dep_id: str, rates: dict[int, float],
           *, rounds: int = 40, per_round: int = 400) -> dict[str, Any]:
    for i in range(rounds):
        run_traffic(agent, "support/triage", per_round, rates, seed=i)
        _tick(admin)
        state = admin.get(f"/v1/deployments/{dep_id}").json()
        if state["phase"] in ("promoted", "rolled_back", "awaiting_promotion"):
            return dict(state)
    return dict(admin.get(f"/v1/deployments/{dep_id}").json())


def test_a_better_version_steps_through_the_canary_and_is_promoted(live: LiveDaemon) -> None:
    admin, agent = _setup(live, "Triage {{ ticket }} carefully, citing the policy.")
    dep = _deploy(admin, [2])
    assert dep["phase"] == "running" and dep["weights"]["c1"] == 0.025  # 5% of a 50/50 split
    resolved = agent.get("/v1/prompts/support/triage/resolve", params={"subject": "u"}).json()
    assert resolved["deployment"] == dep["deployment_id"]
    final = _drive(admin, agent, dep["deployment_id"], {1: 0.70, 2: 0.85})
    assert final["phase"] == "promoted", final
    assert final["winner"] == "c1"
    resolved = agent.get("/v1/prompts/support/triage/resolve", params={"subject": "u"}).json()
    assert resolved["version"] == 2 and resolved["deployment"] is None
    history = admin.get("/v1/prompts/support/triage/history").json()["history"]
    types = [h["type"] for h in history]
    assert "deployment.started" in types and types.count("deployment.stepped") == 3
    assert types[-2:] == ["deployment.promoted", "label.moved"]
    promoted = next(h for h in history if h["type"] == "deployment.promoted")
    assert promoted["actor"] == "promptd" and "c1" in promoted["reason"]


def test_a_harmful_version_is_rolled_back_with_its_evidence(live: LiveDaemon) -> None:
    admin, agent = _setup(live, "Triage {{ ticket }} in one word.")
    dep = _deploy(admin, [2])
    final = _drive(admin, agent, dep["deployment_id"], {1: 0.80, 2: 0.55})
    assert final["phase"] == "rolled_back", final
    assert "harm" in final["outcome_reason"]
    events = admin.get("/v1/events", params={"type": "deployment.rolled_back"}).json()["events"]
    evidence = events[-1]["payload"]["evidence"]
    assert evidence and "arms" in evidence
    assert agent.get("/v1/prompts/support/triage/resolve").json()["version"] == 1
    metrics = httpx.get(f"{live.url}/metrics").text
    assert 'promptd_rollbacks_total{prompt="support/triage",reason="harm"} 1.0' in metrics


def test_admin_gates_and_invalid_transitions(live: LiveDaemon) -> None:
    admin, agent = _setup(live, "v2 {{ ticket }}", "v3 {{ ticket }}")
    r = admin.post("/v1/deployments", json={"prompt": "support/triage", "versions": [2],
                                            "requires_approval": True, "policy": FAST})
    dep_id = r.json()["deployment_id"]
    assert r.json()["phase"] == "pending_approval"
    # While pending, everyone gets control.
    seen = {agent.get("/v1/prompts/support/triage/resolve", params={"subject": f"s{i}"}
                      ).json()["version"] for i in range(50)}
    assert seen == {1}
    for action in ("pause", "resume", "promote"):
        r = admin.post(f"/v1/deployments/{dep_id}/{action}")
        assert r.status_code == 409, (action, r.text)
    r = admin.post("/v1/deployments", json={"prompt": "support/triage", "versions": [3]})
    assert r.status_code == 409 and "one at a time" in r.json()["error"]["message"]
    assert admin.post(f"/v1/deployments/{dep_id}/approve").json()["event"] == (
        "deployment.approved")
    assert admin.post(f"/v1/deployments/{dep_id}/approve").status_code == 409
    assert admin.post(f"/v1/deployments/{dep_id}/pause").status_code == 200
    assert admin.get(f"/v1/deployments/{dep_id}").json()["phase"] == "paused"
    assert admin.post(f"/v1/deployments/{dep_id}/resume").status_code == 200
    promoted = admin.post(f"/v1/deployments/{dep_id}/promote").json()
    assert promoted["event"] == "deployment.stepped"  # promote = one step forward
    assert admin.post(f"/v1/deployments/{dep_id}/rollback").status_code == 200
    r = admin.post(f"/v1/deployments/{dep_id}/promote")
    assert r.status_code == 409 and "rolled_back" in r.json()["error"]["message"]
    assert admin.post("/v1/deployments/nope/approve").status_code == 404


@pytest.mark.parametrize(("policy", "field"), [
    ({"steps": [50, 25, 100]}, "policy.steps"),
    ({"steps": [5, 50]}, "policy.steps"),
    ({"alpha": 2}, "policy.alpha"),
    ({"bogus": 1}, "policy.bogus"),
])
def test_invalid_policies_are_422_naming_the_field(live: LiveDaemon, policy: dict[str, Any],
                                                   field: str) -> None:
    admin, _ = _setup(live, "v2 {{ ticket }}")
    r = admin.post("/v1/deployments", json={"prompt": "support/triage", "versions": [2],
                                            "policy": policy})
    assert r.status_code == 422, r.text
    assert field in [d["field"] for d in r.json()["error"]["details"]]
    assert admin.get("/v1/deployments").json()["deployments"] == []


def test_deploying_control_or_unknown_versions_is_refused(live: LiveDaemon) -> None:
    admin, _ = _setup(live, "v2 {{ ticket }}")
    assert admin.post("/v1/deployments", json={"prompt": "support/triage",
                                               "versions": [1]}).status_code == 422
    assert admin.post("/v1/deployments", json={"prompt": "support/triage",
                                               "versions": [9]}).status_code == 404
    assert admin.post("/v1/deployments", json={"prompt": "nope",
                                               "versions": [2]}).status_code == 404


def test_manual_rollback_without_a_deployment(live: LiveDaemon) -> None:
    admin, agent = _setup(live, "v2 {{ ticket }}")
    admin.post("/v1/prompts/support/triage/versions",
               json={"template": "v3 {{ ticket }}", "make_production": True}).raise_for_status()
    assert admin.post("/v1/prompts/support/triage/rollback", json={"to": 9}).status_code == 404
    r = admin.post("/v1/prompts/support/triage/rollback", json={})
    assert r.json()["production"] == 1  # undoes the last move of the label (1 -> 3)
    admin.post("/v1/prompts/support/triage/rollback", json={"to": 2}).raise_for_status()
    assert agent.get("/v1/prompts/support/triage/resolve").json()["version"] == 2
    r = admin.post("/v1/prompts/support/triage/rollback", json={"to": 1, "reason": "bad tone"})
    assert r.json()["production"] == 1
    assert admin.post("/v1/prompts/support/triage/rollback",
                      json={"to": 1}).status_code == 409
    moves = [h for h in admin.get("/v1/prompts/support/triage/history").json()["history"]
             if h["type"] == "label.moved"]
    assert moves[-1]["reason"] == "bad tone"


def test_sticky_assignment_while_the_canary_grows(live: LiveDaemon) -> None:
    admin, agent = _setup(live, "v2 {{ ticket }}")
    dep = _deploy(admin, [2])
    subjects = [f"user-{i}" for i in range(2000)]

    def arms() -> dict[str, str]:
        return {s: agent.get("/v1/prompts/support/triage/resolve", params={"subject": s}
                             ).json()["arm"] for s in subjects}

    before = arms()
    admin.post(f"/v1/deployments/{dep['deployment_id']}/promote").raise_for_status()
    after = arms()
    in_canary = [s for s, a in before.items() if a == "c1"]
    assert 20 <= len(in_canary) <= 80  # 2.5% of 2000, loosely
    assert all(after[s] == "c1" for s in in_canary)
    assert sum(a == "c1" for a in after.values()) > len(in_canary)


def test_restart_mid_canary_resumes_with_the_same_step_and_statistics(tmp_path: Path) -> None:
    with live_daemon(tmp_path) as live:
        admin, agent = _setup(live, "v2 {{ ticket }}")
        dep = _deploy(admin, [2])
        admin.post(f"/v1/deployments/{dep['deployment_id']}/promote").raise_for_status()
        run_traffic(agent, "support/triage", 600, {1: 0.8, 2: 0.8})
        before = admin.get(f"/v1/deployments/{dep['deployment_id']}").json()
    with live_daemon(tmp_path) as live:
        after = live.client().get(f"/v1/deployments/{dep['deployment_id']}").json()
    assert after["step"] == before["step"] == 2
    assert after["arms_stats"] == before["arms_stats"]
    assert after["next_decision"]["event"] == before["next_decision"]["event"]


def test_policy_overrides_are_stored_and_validated(live: LiveDaemon) -> None:
    admin, _ = _setup(live)
    r = admin.put("/v1/prompts/support/triage/policy",
                  json={"overrides": {"steps": [10, 100], "min_samples_per_step": 50}})
    assert r.status_code == 200 and r.json()["policy"]["steps"] == [10.0, 100.0]
    assert admin.get("/v1/prompts/support/triage/policy").json()["overrides"][
        "min_samples_per_step"] == 50
    bad = admin.put("/v1/prompts/support/triage/policy", json={"overrides": {"steps": [10]}})
    assert bad.status_code == 422
