"""Operator mistakes at start: ``promptd serve`` (and replay, backup, restore) refuse in one
line naming what to fix, and leave any file that is not promptd's exactly as it was."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from service.server import free_port
from service.store.database import create_log_engine
from service.store.identity import APPLICATION_ID
from tests.support import PROMPTD, start_process

SETTING = "PROMPTD_DATABASE_URL"
RUN_TIMEOUT_S = 120.0  # a cold start imports scipy and sklearn: slow on a busy machine


@dataclass(frozen=True)
class Outcome:
    """How one command ended."""

    returncode: int
    stderr: str

    @property
    def lines(self) -> list[str]:
        """Return the non-empty lines of stderr."""
        return [line for line in self.stderr.splitlines() if line.strip()]


def _env(data_dir: Path, url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPTD_")}
    env.update({"PROMPTD_TOKEN_FILE": str(data_dir / "admin.token"),
                "PROMPTD_PORT": str(free_port()), "PROMPTD_SCHEDULER_ENABLED": "false",
                "PROMPTD_LOG_FORMAT": "json"})
    if url is not None:
        env["PROMPTD_DATABASE_URL"] = url
    return env


def _run_all(commands: dict[str, tuple[list[str], Path, str | None]]) -> dict[str, Outcome]:
    """Run every ``promptd`` command at once (cold starts overlap); return how each ended."""
    procs = {name: subprocess.Popen([PROMPTD, *args], cwd=cwd, env=_env(cwd, url),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True)
             for name, (args, cwd, url) in commands.items()}
    outcomes: dict[str, Outcome] = {}
    for name, proc in procs.items():
        try:
            _, stderr = proc.communicate(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
            stderr += "\n(still running: it did not refuse)"
        outcomes[name] = Outcome(proc.returncode, stderr)
    return outcomes


def _fingerprint(directory: Path) -> dict[str, tuple[str, int]]:
    """Return (sha256, mode) of every file in ``directory``."""
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), stat.S_IMODE(p.stat().st_mode))
            for p in sorted(directory.iterdir()) if p.is_file()}


def _promptd_database(path: Path) -> None:
    """Create a promptd database at ``path`` and fold its WAL into the file."""
    create_log_engine(f"sqlite:///{path}").dispose()
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")


def _foreign_files(root: Path) -> dict[str, Path]:
    """Files of other applications (and broken ones), each alone in its own directory."""
    made: dict[str, Path] = {}
    root.mkdir(exist_ok=True)

    def place(name: str) -> Path:
        (root / name).mkdir()
        made[name] = root / name / "app.db"
        return made[name]

    place("text").write_text("host=db.internal\nuser=app\n")
    with closing(sqlite3.connect(place("sqlite_app"))) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
        conn.execute("INSERT INTO users (email) VALUES ('a@example.com')")
        conn.commit()
    with closing(sqlite3.connect(place("other_app_id"))) as conn:
        conn.execute("PRAGMA application_id = 1196444237")  # "GPKG": a GeoPackage
        conn.execute("CREATE TABLE events (x)")  # even with a table of the same name
        conn.commit()
    _promptd_database(root / "whole.db")
    whole = (root / "whole.db").read_bytes()
    place("truncated").write_bytes(whole[: len(whole) // 2])
    place("garbage").write_bytes(os.urandom(8192))
    for path in made.values():
        os.chmod(path, 0o664)
    return made


def test_a_file_that_is_not_a_promptd_database_is_refused_and_left_as_it_was(
    tmp_path: Path,
) -> None:
    files = _foreign_files(tmp_path)
    before = {name: _fingerprint(path.parent) for name, path in files.items()}
    outcomes = _run_all({name: (["serve"], path.parent, f"sqlite:///{path}")
                         for name, path in files.items()}
                        | {"debug": (["serve", "--debug"], files["text"].parent,
                                     f"sqlite:///{files['text']}")})
    for name, path in files.items():
        out = outcomes[name]
        assert out.returncode != 0, (name, out)
        assert len(out.lines) == 1 and "Traceback" not in out.stderr, (name, out.stderr)
        assert str(path) in out.stderr and SETTING in out.stderr, (name, out.stderr)
        # Same bytes and modes, and nothing new beside it: no -wal, -shm or lock file.
        assert _fingerprint(path.parent) == before[name], name
    assert outcomes["debug"].returncode != 0
    assert "Traceback" in outcomes["debug"].stderr


@contextmanager
def _read_only_directory(path: Path) -> Iterator[Path]:
    """Yield a directory nobody may write to, root included when running as root."""
    path.mkdir()
    if os.geteuid() != 0:
        os.chmod(path, 0o555)
        try:
            yield path
        finally:
            os.chmod(path, 0o755)
        return
    if shutil.which("mount") is None:
        pytest.skip("running as root without mount(8): no way to make a read-only directory")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"running as root and cannot mount a read-only tmpfs: {made.stderr}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def _closed_port() -> int:
    with socket.socket() as s:  # bound, never listening: connections are refused
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _older_promptd_log(path: Path) -> None:
    """A log as promptd wrote it before stream versions: events without stream_version."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE events (position INTEGER PRIMARY KEY, event_id VARCHAR(64) "
                     "NOT NULL UNIQUE, type VARCHAR(64) NOT NULL, stream VARCHAR(200) NOT "
                     "NULL, recorded_at FLOAT NOT NULL, schema_version INTEGER NOT NULL, "
                     "payload TEXT NOT NULL)")
        conn.execute("CREATE TABLE projection_positions (name VARCHAR(64) PRIMARY KEY, "
                     "position BIGINT NOT NULL)")
        conn.commit()


def _damaged(path: Path) -> None:
    """A promptd database whose schema page is overwritten (header intact, size right)."""
    _promptd_database(path)
    data = bytearray(path.read_bytes())
    data[100:4096] = os.urandom(3996)
    path.write_bytes(bytes(data))


def test_startup_failures_end_in_one_line_naming_the_setting_to_fix(tmp_path: Path) -> None:
    dirs = {name: tmp_path / name for name in (
        "two_slashes", "memory", "postgres_down", "older_log", "damaged", "in_use")}
    for d in dirs.values():
        d.mkdir()
    _older_promptd_log(dirs["older_log"] / "promptd.db")
    _damaged(dirs["damaged"] / "promptd.db")
    running = start_process(dirs["in_use"])
    try:
        with _read_only_directory(tmp_path / "read_only") as read_only:
            outcomes = _run_all({
                "two_slashes": (["serve"], dirs["two_slashes"], "sqlite://tmp/x.db"),
                "memory": (["serve"], dirs["memory"], "sqlite:///:memory:"),
                "postgres_down": (["serve"], dirs["postgres_down"],
                                  f"postgresql+psycopg://promptd:s3cret@127.0.0.1:"
                                  f"{_closed_port()}/promptd"),
                "read_only": (["serve"], tmp_path,
                              f"sqlite:///{read_only / 'promptd.db'}"),
                **{name: (["serve"], dirs[name], f"sqlite:///{dirs[name] / 'promptd.db'}")
                   for name in ("older_log", "damaged", "in_use")},
            })
    finally:
        running.terminate()
    expected = {  # a phrase of what is wrong; every line also names the setting
        "two_slashes": "sqlite:///tmp/x.db", "memory": "in-memory",
        "postgres_down": "cannot connect", "read_only": "Read-only file system"
        if os.geteuid() == 0 else "Permission denied",
        "older_log": "older promptd", "damaged": "damaged", "in_use": "in use by another promptd",
    }
    for name, phrase in expected.items():
        out = outcomes[name]
        assert out.returncode != 0, (name, out)
        assert len(out.lines) == 1 and "Traceback" not in out.stderr, (name, out.stderr)
        assert phrase in out.stderr and SETTING in out.stderr, (name, out.stderr)
    assert "s3cret" not in outcomes["postgres_down"].stderr
    assert not (dirs["two_slashes"] / "x.db").exists()  # the file SQLite would have made
    # The older log was looked at, not changed: still no stream versions, still unmarked.
    with closing(sqlite3.connect(dirs["older_log"] / "promptd.db")) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(events)")}
        assert "stream_version" not in columns
        assert conn.execute("PRAGMA application_id").fetchone()[0] == 0


def test_a_promptd_database_from_before_the_marker_is_served_and_marked(
    tmp_path: Path,
) -> None:
    db = tmp_path / "promptd.db"
    _promptd_database(db)
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA application_id = 0")
        conn.commit()
    proc = start_process(tmp_path)
    try:
        assert httpx.get(f"{proc.url}/readyz", timeout=10).status_code == 200
    finally:
        proc.terminate()
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID


def test_replay_backup_and_restore_refuse_a_database_that_does_not_exist(
    tmp_path: Path,
) -> None:
    elsewhere = tmp_path / "wrong-folder"  # the default URL is relative: var/promptd.db
    elsewhere.mkdir()
    snapshot = tmp_path / "snap.db"
    _promptd_database(snapshot)
    foreign = _foreign_files(tmp_path / "foreign")
    target = foreign["sqlite_app"]
    before = _fingerprint(target.parent)
    outcomes = _run_all({
        "replay": (["replay"], elsewhere, None),
        "backup": (["backup", "out.db"], elsewhere, None),
        "restore": (["restore", str(snapshot)], elsewhere, None),
        "restore_onto_foreign": (["restore", str(snapshot), "--force"], tmp_path,
                                 f"sqlite:///{target}"),
        "backup_onto_foreign": (["backup", str(target)], tmp_path, f"sqlite:///{snapshot}"),
    })
    for name in ("replay", "backup", "restore"):
        out = outcomes[name]
        assert out.returncode == 1 and len(out.lines) == 1, (name, out.stderr)
        assert "no such database" in out.stderr, (name, out.stderr)
    assert "--create" in outcomes["restore"].stderr
    assert list(elsewhere.iterdir()) == []  # no var/, no empty database, no out.db
    for name in ("restore_onto_foreign", "backup_onto_foreign"):
        out = outcomes[name]
        assert out.returncode == 1 and len(out.lines) == 1, (name, out.stderr)
        assert "leaves it untouched" in out.stderr, (name, out.stderr)
    assert _fingerprint(target.parent) == before
    created = _run_all({"restore": (["restore", str(snapshot), "--create"], elsewhere, None)})
    assert created["restore"].returncode == 0, created["restore"].stderr
    assert (elsewhere / "var" / "promptd.db").is_file()
