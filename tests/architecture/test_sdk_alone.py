"""The agent SDK installs and runs without the server: a fresh venv, ``pip install .``.

The base distribution carries only what an agent needs (httpx, pydantic, jinja2); resolving
from a real daemon, rendering and assigning an arm load none of the server's heavy modules.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.support import REPO, LiveDaemon

HEAVY = ("numpy", "scipy", "sklearn", "sqlalchemy", "fastapi", "uvicorn", "apscheduler",
         "structlog", "starlette", "prometheus_client")
SERVER_DISTRIBUTIONS = {"fastapi", "sqlalchemy", "scipy", "scikit-learn", "numpy", "uvicorn",
                        "apscheduler", "structlog", "prometheus-client", "pydantic-settings"}

AGENT = r"""
import json, sys, time
started = time.perf_counter()
from service.sdk import PromptdClient
imported = time.perf_counter()
url, token = sys.argv[1], sys.argv[2]
with PromptdClient(url, token=token) as pd:
    resolved = pd.resolve("support/triage", subject="user-42")
    before = time.perf_counter()
    text = resolved.render(ticket="T-1", customer="Ada")
    rendered = time.perf_counter()
    arm = resolved.for_subject("user-7")
    chat = pd.resolve("support/chat").render_messages(question="Where?", history=[])
    with pd.execution("support/triage", subject="user-42") as run:
        run.render(ticket="T-2", customer="Bo")
        run.success = True
    pd.flush(10)
heavy = [m for m in sys.argv[3].split(",") if m in sys.modules]
print(json.dumps({"text": text, "chat": chat, "version": resolved.version,
                  "arm_version": arm.version,
                  "import_ms": (imported - started) * 1000,
                  "first_render_ms": (rendered - before) * 1000, "heavy": heavy}))
"""


@pytest.fixture(scope="module")
def sdk_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return the python of a fresh venv holding ``pip install .`` of this repository."""
    where = tmp_path_factory.mktemp("sdk-venv")
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    # From a copy: building a wheel writes build/ and *.egg-info into the source tree.
    source = tmp_path_factory.mktemp("sdk-src") / "promptd"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "var", "build", "*.egg-info", "__pycache__", ".*_cache"))
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(source)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return python


@pytest.mark.slow
def test_pip_install_without_extras_brings_no_server_dependency(sdk_python: Path) -> None:
    listed = subprocess.run([str(sdk_python), "-m", "pip", "list", "--format=json"],
                            check=True, capture_output=True, text=True).stdout
    installed = {d["name"].lower() for d in json.loads(listed)}
    assert {"httpx", "pydantic", "jinja2"} <= installed
    assert not installed & SERVER_DISTRIBUTIONS, installed & SERVER_DISTRIBUTIONS


@pytest.mark.slow
def test_sdk_alone_resolves_renders_and_reports_without_loading_server_modules(
        sdk_python: Path, live: LiveDaemon) -> None:
    live.create_prompt()
    live.client().post("/v1/prompts", json={"name": "support/chat", "messages": [
        {"role": "system", "content": "Be kind."}, {"role": "placeholder", "name": "history"},
        {"role": "user", "content": "{{ question }}"}]}).raise_for_status()
    token = live.issue("agent")
    out = subprocess.run([str(sdk_python), "-c", AGENT, live.url, token, ",".join(HEAVY)],
                         check=True, capture_output=True, text=True, timeout=60,
                         cwd="/").stdout  # not the repository: only the installed package
    result = json.loads(out.strip().splitlines()[-1])
    print(f"SDK alone: import {result['import_ms']:.1f} ms, "
          f"first render {result['first_render_ms']:.1f} ms", file=sys.stderr)
    assert result["text"] == "Answer the ticket T-1 for Ada."
    assert result["chat"] == [{"role": "system", "content": "Be kind."},
                              {"role": "user", "content": "Where?"}]
    assert result["version"] == result["arm_version"] == 1
    assert result["heavy"] == []
    counts = live.client().get("/v1/prompts/support/triage").json()["versions"][0]["counts"]
    assert counts["executions"] == 1  # the run was delivered to the daemon
