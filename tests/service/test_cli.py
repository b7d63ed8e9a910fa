"""The `promptd` command end to end against a real daemon on loopback."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from tests.support import PROMPTD, LiveDaemon


def run(live: LiveDaemon | None, *args: str, token: str | None = None,
        stdin: str | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPTD_")}
    if live is not None:
        env["PROMPTD_URL"] = live.url
        env["PROMPTD_TOKEN"] = token or live.admin_token
    return subprocess.run([PROMPTD, *args], env=env, capture_output=True, text=True,
                          input=stdin, timeout=60, cwd=cwd)


def test_prompt_and_version_commands(live: LiveDaemon, tmp_path: Path) -> None:
    tpl = tmp_path / "t.j2"
    tpl.write_text("Hello {{ name }}\nBe brief.\n")
    out = run(live, "prompts", "create", "demo/hello", "--template-file", str(tpl),
              "--description", "greeting")
    assert out.returncode == 0, out.stderr
    assert "created demo/hello v1" in out.stdout
    out = run(live, "versions", "add", "demo/hello", "--template-file", "-", "--rationale",
              "friendlier", stdin="Hello {{ name }}\nBe warm and brief.\n")
    assert out.returncode == 0 and "v2" in out.stdout
    listed = run(live, "prompts", "list")
    assert "demo/hello" in listed.stdout and "greeting" in listed.stdout
    shown = json.loads(run(live, "prompts", "show", "demo/hello", "--json").stdout)
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    diff = run(live, "diff", "demo/hello", "1", "2")
    assert "-Be brief." in diff.stdout and "+Be warm and brief." in diff.stdout
    assert "friendlier" in diff.stdout


def test_status_events_tail_and_tokens(live: LiveDaemon) -> None:
    live.create_prompt()
    status = json.loads(run(live, "status", "--json").stdout)
    assert status["log_position"] >= 4 and status["projection_lag"] == 0
    tail = run(live, "events", "tail", "--limit", "10")
    assert "prompt.created" in tail.stdout and "label.moved" in tail.stdout
    issued = run(live, "token", "issue", "--role", "agent", "--name", "bot", "--json")
    token = json.loads(issued.stdout)
    listed = run(live, "token", "list")
    assert token["token_id"] in listed.stdout and "bot" in listed.stdout
    assert token["token"] not in listed.stdout
    revoked = run(live, "token", "revoke", token["token_id"])
    assert revoked.returncode == 0 and "revoked" in revoked.stdout
    assert "revoked" in run(live, "token", "list").stdout


def test_failures_exit_nonzero_with_one_line_reason(live: LiveDaemon) -> None:
    out = run(live, "prompts", "show", "does/not-exist")
    assert out.returncode == 1
    assert out.stderr.strip() == "promptd prompts show: 404: unknown prompt 'does/not-exist'"
    agent = run(live, "prompts", "list", token=live.issue("agent"))
    assert agent.returncode == 1 and "403" in agent.stderr
    bad = run(live, "prompts", "create", "x", "--template", "{{ broken")
    assert bad.returncode == 1 and "template" in bad.stderr


def test_unreachable_daemon_is_a_clear_error() -> None:
    env_live = None
    out = run(env_live, "--help")
    assert out.returncode == 0 and "serve" in out.stdout
    out = subprocess.run([PROMPTD, "status", "--url", "http://127.0.0.1:9", "--token", "x"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1 and "cannot reach promptd" in out.stderr


def test_serve_help_documents_the_settings() -> None:
    out = run(None, "serve", "--help")
    for name in ("PROMPTD_DATABASE_URL", "PROMPTD_HOST", "PROMPTD_TOKEN_FILE",
                 "PROMPTD_MAX_BODY_BYTES", "PROMPTD_CANARY_INTERVAL_S", "PROMPTD_CONFIG"):
        assert name in out.stdout


def test_replay_command_reports_equality(live: LiveDaemon) -> None:
    live.create_prompt()
    out = run(None, "replay", "--database-url", live.settings.database_url)
    assert out.returncode == 0, out.stderr
    assert "EQUAL" in out.stdout
    # The last progress line is always printed: everything replayed, at what rate.
    head = live.daemon.writer.position
    assert re.search(rf"replayed {head}/{head} events \(100%\), [\d,]+ events/s, done",
                     out.stderr), out.stderr
