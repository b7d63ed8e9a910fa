"""Every rollout verb of the `promptd` command against a real daemon."""

from __future__ import annotations

import json

from tests.service.test_cli import run
from tests.support import LiveDaemon


def _deploy(live: LiveDaemon, *extra: str) -> str:
    out = run(live, "deploy", "support/triage", "2", "--steps", "10,50,100", *extra, "--json")
    assert out.returncode == 0, out.stderr
    return str(json.loads(out.stdout)["deployment_id"])


def test_deploy_gates_and_admin_verbs(live: LiveDaemon) -> None:
    live.create_prompt()
    run(live, "versions", "add", "support/triage", "--template",
        "Answer {{ ticket }} for {{ customer }} kindly.")
    dep = _deploy(live, "--approval")
    listed = run(live, "deployments")
    assert dep in listed.stdout and "pending_approval" in listed.stdout
    for verb in ("pause", "promote"):
        out = run(live, verb, dep)
        assert out.returncode == 1 and "409" in out.stderr, verb
    assert run(live, "approve", dep).returncode == 0
    assert run(live, "pause", dep).returncode == 0
    shown = run(live, "deployment", "show", dep)
    assert "paused" in shown.stdout and "control" in shown.stdout and "c1" in shown.stdout
    assert run(live, "resume", dep).returncode == 0
    out = run(live, "promote", dep)
    assert out.returncode == 0 and "deployment.stepped" in out.stdout
    out = run(live, "promote", dep, "--full", "--yes")  # no executions: needs --yes
    assert out.returncode == 0 and "deployment.promoted" in out.stdout
    assert json.loads(run(live, "prompts", "show", "support/triage", "--json").stdout)[
        "labels"]["production"] == 2
    out = run(live, "approve", dep)
    assert out.returncode == 1 and "promoted" in out.stderr  # nothing to approve any more
    history = run(live, "history", "support/triage")
    for kind in ("deployment.started", "deployment.approved", "deployment.paused",
                 "deployment.resumed", "deployment.stepped", "deployment.promoted"):
        assert kind in history.stdout, kind
    assert dep not in run(live, "deployments").stdout  # ended: only listed with --all
    assert dep in run(live, "deployments", "--all").stdout


def test_reject_rollback_policy_candidates_and_jobs(live: LiveDaemon) -> None:
    live.create_prompt()
    run(live, "versions", "add", "support/triage", "--template", "v2 {{ ticket }} {{ customer }}")
    dep = _deploy(live, "--approval")
    assert run(live, "reject", dep, "--reason", "not now").returncode == 0
    out = run(live, "rollback", "support/triage", "--to", "9")
    assert out.returncode == 1 and "no version 9" in out.stderr
    dep2 = _deploy(live)
    out = run(live, "rollback", "support/triage", "--reason", "bad idea")
    assert out.returncode == 0 and dep2 in out.stdout
    policy = run(live, "policy", "support/triage", "--set", "min_samples_per_step=500",
                 "--set", "steps=[20,100]")
    assert policy.returncode == 0 and "min_samples_per_step" in policy.stdout
    bad = run(live, "policy", "support/triage", "--set", "steps=[50,20]")
    assert bad.returncode == 1 and "steps" in bad.stderr
    assert "no candidates" in run(live, "candidates").stdout
    for job in ("mine", "improve", "canary"):
        out = run(live, "jobs", "run", job)
        assert out.returncode == 0 and f"{job}: ok" in out.stdout
