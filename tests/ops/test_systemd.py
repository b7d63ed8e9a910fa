"""The systemd unit is valid for systemd itself and runs the daemon the way ops/README.md says."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.ops.artifacts import README, SYSTEMD_UNIT
from tests.support import PROMPTD

INSTALLED_PROMPTD = "/opt/promptd/.venv/bin/promptd"


def _directives(text: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith(("#", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    # The unit names the installed path; verify it against this checkout's promptd instead.
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is part of Debian's systemd package"
    text = SYSTEMD_UNIT.read_text()
    assert INSTALLED_PROMPTD in text
    unit = tmp_path / SYSTEMD_UNIT.name
    unit.write_text(text.replace(INSTALLED_PROMPTD, PROMPTD))
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert SYSTEMD_UNIT.name not in done.stderr, done.stderr  # no warnings about the unit


def test_unit_serves_from_a_private_state_directory_as_its_own_user() -> None:
    d = _directives(SYSTEMD_UNIT.read_text())
    assert d["ExecStart"] == [f"{INSTALLED_PROMPTD} serve"]
    assert d["User"] == ["promptd"] and d["StateDirectory"] == ["promptd"]
    assert d["StateDirectoryMode"] == ["0700"] and d["UMask"] == ["0077"]
    env = dict(e.split("=", 1) for e in d["Environment"])
    assert env["PROMPTD_DATABASE_URL"] == "sqlite:////var/lib/promptd/promptd.db"
    assert env["PROMPTD_TOKEN_FILE"] == "/var/lib/promptd/admin.token"
    assert env["PROMPTD_HOST"] == "127.0.0.1"
    assert d["Restart"] == ["on-failure"] and d["KillSignal"] == ["SIGTERM"]
    assert d["ProtectSystem"] == ["strict"] and d["NoNewPrivileges"] == ["yes"]


def test_readme_installs_the_unit_where_it_expects_promptd() -> None:
    readme = README.read_text()
    venv = INSTALLED_PROMPTD.removesuffix("/bin/promptd")
    assert re.search(rf"python3 -m venv {re.escape(venv)}\b", readme)
    assert f"cp ops/systemd/{SYSTEMD_UNIT.name} /etc/systemd/system/" in readme
    assert "/var/lib/promptd/admin.token" in readme
