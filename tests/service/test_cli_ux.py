"""Issue 19: what an admin meets at the `promptd` command, end to end against a real daemon."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from deploy.policy import CanaryPolicy
from service.runtime.settings import Settings
from tests.service.test_cli import run
from tests.support import PROMPTD, REPO, LiveDaemon


def _json(out: subprocess.CompletedProcess[str]) -> Any:
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _two_versions(live: LiveDaemon) -> None:
    live.create_prompt()
    out = run(live, "versions", "add", "support/triage", "--template",
              "Answer {{ ticket }} for {{ customer }} kindly.")
    assert out.returncode == 0, out.stderr


def _deploy(live: LiveDaemon, *extra: str) -> dict[str, Any]:
    return _json(run(live, "deploy", "support/triage", "2", "--steps", "5,25,50,100", *extra,
                     "--json"))


# -- item 3: policy overrides merge, unset, take the deploy syntax, and are documented -----

def test_policy_set_keeps_other_overrides_unsets_one_and_takes_comma_steps(
        live: LiveDaemon) -> None:
    live.create_prompt()
    assert run(live, "policy", "support/triage", "--set", "min_samples_per_step=500"
               ).returncode == 0
    out = run(live, "policy", "support/triage", "--set", "steps=10,50,100", "--json")
    assert _json(out)["overrides"] == {"min_samples_per_step": 500, "steps": [10, 50, 100]}
    out = run(live, "policy", "support/triage", "--unset", "min_samples_per_step", "--json")
    data = _json(out)
    assert data["overrides"] == {"steps": [10, 50, 100]}
    assert data["policy"]["min_samples_per_step"] == CanaryPolicy().min_samples_per_step
    out = run(live, "policy", "support/triage", "--unset", "alpha")
    assert out.returncode == 1 and "alpha" in out.stderr and "steps" in out.stderr


def test_policy_help_lists_every_key_and_the_value_syntax() -> None:
    out = run(None, "policy", "--help")
    assert out.returncode == 0
    for key in CanaryPolicy.model_fields:
        assert re.search(rf"^\s+{key}\s", out.stdout, re.M), key
    assert "steps=10,50,100" in out.stdout and "--unset" in out.stdout


# -- item 4: one vocabulary: share of traffic to candidates, steps from 1, fractions -------

def test_rollout_speaks_of_the_candidates_share_with_steps_counted_from_one(
        live: LiveDaemon) -> None:
    _two_versions(live)
    started = _deploy(live)
    dep = started["deployment_id"]
    assert started["step"] == 1 and started["steps"] == 4
    assert started["candidate_share"] == pytest.approx(0.025)
    assert started["weights"] == {"control": pytest.approx(0.975), "c1": pytest.approx(0.025)}
    assert started["candidate_share_by_step"] == pytest.approx([0.025, 0.125, 0.25, 0.5])
    assert "step_percent" not in started and "step_index" not in started
    listed = _json(run(live, "deployments", "--json"))["deployments"][0]
    shown = _json(run(live, "deployment", "show", dep, "--json"))
    assert listed["weights"] == shown["weights"] == started["weights"]
    assert {a["arm"]: a["weight"] for a in shown["arms_stats"]} == shown["weights"]

    metrics = live.daemon.metrics.registry
    labels = {"prompt": "support/triage"}
    assert metrics.get_sample_value("promptd_deployment_step", labels) == 1
    assert metrics.get_sample_value("promptd_deployment_weight_ratio",
                                    {**labels, "arm": "c1"}) == pytest.approx(0.025)

    human = run(live, "deployment", "show", dep).stdout
    assert "step 1/4: candidates get 2.5% of traffic" in human
    table = run(live, "deployments").stdout
    assert "step 1/4" in table and "control:97.5% c1:2.5%" in table
    stepped = run(live, "promote", dep)
    assert stepped.returncode == 0, stepped.stderr
    assert "step 2/4, candidates get 12.5% of traffic" in stepped.stdout
    assert metrics.get_sample_value("promptd_deployment_step", labels) == 2
    history = run(live, "history", "support/triage").stdout
    assert "step=2" in history  # the log's step_index 1 is the second step


# -- item 5: a unique prefix names a deployment --------------------------------------------

def test_deployment_commands_take_a_unique_prefix_and_refuse_an_ambiguous_one(
        live: LiveDaemon) -> None:
    _two_versions(live)
    first = _deploy(live, "--approval")["deployment_id"]
    assert run(live, "reject", first[:14]).returncode == 0
    second = _deploy(live)["deployment_id"]
    shown = run(live, "deployment", "show", second[4:20], "--json")  # without "dep-"
    assert _json(shown)["deployment_id"] == second
    assert run(live, "pause", second[:-6]).returncode == 0
    ambiguous = run(live, "resume", "dep-")
    assert ambiguous.returncode == 1 and "ambiguous" in ambiguous.stderr
    assert first in ambiguous.stderr and second in ambiguous.stderr
    unknown = run(live, "resume", "dep-ffffffff")
    assert unknown.returncode == 1 and "no deployment id starts with" in unknown.stderr


# -- item 6: promoting on no evidence asks for --yes --------------------------------------

def test_promote_full_without_any_execution_needs_yes(live: LiveDaemon) -> None:
    _two_versions(live)
    dep = _deploy(live)["deployment_id"]
    refused = run(live, "promote", dep, "--full")
    assert refused.returncode == 1
    assert "no executions" in refused.stderr and "--yes" in refused.stderr
    production = _json(run(live, "prompts", "show", "support/triage", "--json"))
    assert production["labels"]["production"] == 1
    done = run(live, "promote", dep, "--full", "--yes")
    assert done.returncode == 0, done.stderr
    assert "warning" in done.stderr and "deployment.promoted" in done.stdout
    production = _json(run(live, "prompts", "show", "support/triage", "--json"))
    assert production["labels"]["production"] == 2


# -- item 7: events tail filters on the server; unknown types are an error ----------------

def _event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "event_id": str(uuid.uuid4()), "prompt": "support/triage",
            "version": 1, **fields}


def test_events_tail_returns_the_last_events_of_a_type_and_refuses_unknown_types(
        live: LiveDaemon) -> None:
    live.create_prompt()
    agent = live.client(live.issue("agent"))
    executions = [_event("execution", success=False) for _ in range(3)]
    corrections = [_event("correction", execution_id=e["event_id"], category="format",
                          reason="date not in ISO format") for e in executions]
    later = [_event("execution", success=True) for _ in range(30)]
    for batch in (executions, corrections, later):
        agent.post("/v1/events", json={"events": batch}).raise_for_status()
    out = run(live, "events", "tail", "--type", "correction", "--limit", "20", "--json")
    assert out.returncode == 0, out.stderr
    tailed = [json.loads(line) for line in out.stdout.splitlines()]
    assert [e["event_id"] for e in tailed] == [c["event_id"] for c in corrections]
    out = run(live, "events", "tail", "--type", "correction", "--limit", "1", "--json")
    assert [json.loads(line)["event_id"] for line in out.stdout.splitlines()] == [
        corrections[-1]["event_id"]]
    bad = run(live, "events", "tail", "--type", "nosuch")
    assert bad.returncode == 1 and "unknown event type 'nosuch'" in bad.stderr


# -- item 8: diff of a version without a trailing newline -----------------------------------

def test_diff_keeps_lines_apart_when_a_template_has_no_trailing_newline(
        live: LiveDaemon) -> None:
    assert run(live, "prompts", "create", "demo/hi", "--template",
               "Hello {{ name }}\nBe brief.").returncode == 0
    assert run(live, "versions", "add", "demo/hi", "--template",
               "Hello {{ name }}\nBe warm.").returncode == 0
    lines = run(live, "diff", "demo/hi", "1", "2").stdout.splitlines()
    assert "-Be brief." in lines and "+Be warm." in lines
    assert "\\ No newline at end of file" in lines


# -- item 9: every argument error is one line ----------------------------------------------

@pytest.mark.parametrize("argv", [
    ["deploy", "support/triage", "2", "--steps", "5,25,abc"],
    ["diff", "support/triage", "one", "2"],
    ["deploy"],
    ["nosuch"],
    ["jobs", "run", "bogus"],
    ["events", "tail", "--limit", "many"],
])
def test_every_argument_error_is_one_line_naming_the_command(argv: list[str]) -> None:
    out = run(None, *argv)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("promptd"), out.stderr


# -- item 10: serve --help -------------------------------------------------------------------

def test_serve_help_shows_every_setting_with_a_description_and_its_real_default() -> None:
    out = run(None, "serve", "--help").stdout
    assert "PydanticUndefined" not in out
    columns = set()
    for name in Settings.model_fields:
        line = re.search(rf"^  PROMPTD_{name.upper()}( +)(\S.*)$", out, re.M)
        assert line is not None, name
        columns.add(line.start(2) - line.start(0))
        assert not line.group(2).startswith("[default"), f"{name} has no description"
    assert len(columns) == 1, "descriptions do not start in one column"
    assert "PROMPTD_CANARY_POLICY" in out and "[default: {}]" in out


def test_readme_names_every_setting_of_the_llm_rewriter() -> None:
    readme = (REPO / "README.md").read_text()
    for name in Settings.model_fields:
        if name.startswith("llm_"):
            assert f"PROMPTD_{name.upper()}" in readme, name


# -- item 11: outside the repository root ---------------------------------------------------

def _bare_env(live: LiveDaemon) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPTD_")}
    env["PROMPTD_URL"] = live.url
    return env


def test_the_token_file_is_found_from_a_folder_below_and_a_miss_says_where_it_looked(
        live: LiveDaemon, tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    (root / "var").mkdir(parents=True)
    shutil.copy(live.settings.token_file, root / "var" / "admin.token")
    deeper = root / "ops" / "grafana"
    deeper.mkdir(parents=True)
    found = subprocess.run([PROMPTD, "status"], env=_bare_env(live), cwd=deeper,
                           capture_output=True, text=True, timeout=60)
    assert found.returncode == 0, found.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    missed = subprocess.run([PROMPTD, "status"], env=_bare_env(live), cwd=elsewhere,
                            capture_output=True, text=True, timeout=60)
    assert missed.returncode == 1
    assert str(elsewhere.resolve()) in missed.stderr and "var/admin.token" in missed.stderr
    assert "PROMPTD_TOKEN" in missed.stderr and len(missed.stderr.splitlines()) == 1


def test_readme_says_how_to_run_promptd_outside_make() -> None:
    readme = (REPO / "README.md").read_text()
    first_use = readme.index("promptd token issue")
    assert "source .venv/bin/activate" in readme[:first_use]


# -- item 13: names, version, verbs, severity ------------------------------------------------

def test_history_names_the_token_errors_name_the_verb_and_version_is_shown(
        live: LiveDaemon) -> None:
    live.create_prompt()
    alice = _json(run(live, "token", "issue", "--role", "admin", "--name", "alice", "--json"))
    out = run(live, "versions", "add", "support/triage", "--template", "v2 {{ ticket }}",
              token=alice["token"])
    assert out.returncode == 0, out.stderr
    history = run(live, "history", "support/triage").stdout
    assert "alice" in history and f"token:{alice['token_id']}" not in history
    assert _json(run(live, "history", "support/triage", "--json"))["history"][-1][
        "actor_name"] == "alice"
    missing = run(live, "token", "revoke", "nosuch")
    assert missing.returncode == 1 and missing.stderr.startswith("promptd token revoke: 404")
    version = run(None, "--version")
    assert version.returncode == 0 and version.stdout.strip() == "promptd 0.1.0"


def test_patterns_table_explains_share_trend_and_severity(live: LiveDaemon) -> None:
    live.create_prompt()
    agent = live.client(live.issue("agent"))
    executions = [_event("execution", success=False) for _ in range(40)]
    corrections = [_event("correction", execution_id=e["event_id"], category="format",
                          reason="the date is not in ISO format", severity="high")
                   for e in executions]
    for batch in (executions, corrections):
        agent.post("/v1/events", json={"events": batch}).raise_for_status()
    assert run(live, "jobs", "run", "mine").returncode == 0
    out = run(live, "patterns", "support/triage")
    lines = out.stdout.splitlines()
    assert out.returncode == 0 and "shares over the window ending" in lines[0]
    assert "severity" in lines[1] and lines[1].startswith("id ")  # the table's header
    assert "severity: the sum over its records" in out.stdout
    assert "high 3" in out.stdout
