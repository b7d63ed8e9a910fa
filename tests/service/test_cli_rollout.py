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


def _rolled_back_for_harm(live: LiveDaemon) -> str:
    from tests.service.traffic import run_traffic

    live.create_prompt("support/triage", "Triage {{ ticket }}")
    admin, agent = live.client(), live.client(live.issue("agent"))
    admin.post("/v1/prompts/support/triage/versions",
               json={"template": "Triage {{ ticket }} in one word."}).raise_for_status()
    policy = {"steps": [10, 50, 100], "min_samples_per_step": 100, "min_step_seconds": 0,
              "analysis_interval_seconds": 0.001}
    dep = admin.post("/v1/deployments", json={"prompt": "support/triage", "versions": [2],
                                              "policy": policy}).json()["deployment_id"]
    for i in range(40):
        run_traffic(agent, "support/triage", 150, {1: 0.85, 2: 0.7}, seed=i)
        admin.post("/v1/jobs/canary").raise_for_status()
        if admin.get(f"/v1/deployments/{dep}").json()["phase"] != "running":
            break
    shown = admin.get(f"/v1/deployments/{dep}").json()
    assert shown["phase"] == "rolled_back" and "harm" in shown["outcome_reason"], shown
    return str(dep)


def test_deployment_show_charts_the_bound_crossing_the_harm_boundary(live: LiveDaemon) -> None:
    dep = _rolled_back_for_harm(live)
    out = run(live, "deployment", "show", dep[:22])
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith("c1 - control on success_rate: "))
    end = next(i for i, line in enumerate(lines) if line.startswith("^ upper bound"))
    chart = lines[start:end + 2]
    assert all(len(line) <= 80 for line in chart), "\n".join(chart)
    rows = [line.split("|", 1)[1] for line in chart if "|" in line]
    [harm] = [i for i, r in enumerate(rows) if "harm +0.0 pt" in r]
    width = len(next(line for line in chart if line.strip().startswith("+-")).strip()) - 1
    plotted = [r[:width].ljust(width) for r in rows]  # a column per tick, then names
    assert "---" in plotted[harm]  # the boundary is drawn as a line
    page = live.client().get("/v1/events", params={"type": "canary.analysed",
                                                   "stream": f"canary:{dep}"}).json()
    uppers = [e["payload"]["effects"]["c1"]["success_rate"].get("upper")
              for e in page["events"]]
    assert width == len(uppers) <= 56  # every recorded tick is a column
    carets = {x for x in range(width) if any(r[x] == "^" for r in plotted)}
    assert carets == {x for x, u in enumerate(uppers) if u is not None}
    # Each mark sits on the row its recorded bound maps to (the printed top and bottom of
    # the scale, in points, are rounded: one row of slack), clamped to the edges.
    top, bottom = (float(chart[i].split("pt", 1)[0]) for i in (1, len(rows)))
    for x in carets:
        at = (top - 100 * uppers[x]) / (top - bottom) * (len(rows) - 1)
        expected = min(max(round(at), 0), len(rows) - 1)
        drawn = [i for i, r in enumerate(plotted) if r[x] == "^"]
        assert drawn and abs(drawn[0] - expected) <= 1, (x, uppers[x], "\n".join(chart))
    # The tick that rolled back saw the upper bound below the harm boundary (0), and the
    # chart draws it at or below the boundary's line: that is the rollback, drawn.
    assert uppers[-1] is not None and uppers[-1] < 0
    assert min(i for i, r in enumerate(plotted) if r[-1] == "^") >= harm, "\n".join(chart)


def test_policy_and_deployment_show_print_the_plan(live: LiveDaemon) -> None:
    live.create_prompt()
    run(live, "versions", "add", "support/triage", "--template", "v2 {{ ticket }} {{ customer }}")
    plan = live.client().get("/v1/prompts/support/triage/policy").json()["plan"]
    horizon = f"plan: horizon {plan['planned_samples_per_arm']:,} samples per arm"
    out = run(live, "policy", "support/triage")
    assert out.returncode == 0 and horizon in out.stdout, out.stdout
    assert f"{plan['promotion_tuning']:,.0f} (promotion)" in out.stdout
    assert "counts distinct subjects" in out.stdout
    dep = _deploy(live)
    shown = run(live, "deployment", "show", dep)
    assert horizon in shown.stdout, shown.stdout
    assert "c1 - control on success_rate: no tick recorded yet" in shown.stdout
