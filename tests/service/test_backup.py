"""Backup while the daemon writes, restore into SQLite or PostgreSQL, and what is refused."""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import pytest

from service.contract.ids import uuid7
from service.projections import Projector, default_projections
from service.projections.replay import replay
from service.store.backup import BackupError, backup, inspect_backup, restore
from tests.service.test_cli import run
from tests.support import LiveDaemon

FOLDER = Projector(default_projections())  # the read models a PostgreSQL restore folds

PROMPT = "backup/prompt"


def _event_ids(db: Path) -> list[str]:
    with closing(sqlite3.connect(db)) as conn:
        return [r[0] for r in conn.execute("SELECT event_id FROM events ORDER BY position")]


@contextmanager
def _ingesting(live: LiveDaemon, acked: list[str]) -> Iterator[None]:
    """Post executions from two agents for the duration of the block."""
    token = live.issue("agent")
    stop = threading.Event()

    def agent() -> None:
        with httpx.Client(base_url=live.url, timeout=10,
                          headers={"Authorization": f"Bearer {token}"}) as client:
            while not stop.is_set():
                ids = [uuid7() for _ in range(25)]
                r = client.post("/v1/events", json={"events": [
                    {"type": "execution", "event_id": eid, "prompt": PROMPT, "version": 1,
                     "success": i % 4 != 0, "latency_ms": 20.0} for i, eid in enumerate(ids)]})
                r.raise_for_status()
                acked.extend(ids)

    threads = [threading.Thread(target=agent) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(30)


@pytest.mark.slow
def test_a_backup_taken_during_ingest_restores_to_an_equal_log(
    live: LiveDaemon, tmp_path: Path,
) -> None:
    live.create_prompt(PROMPT, "Answer {{ ticket }}")
    live_db = tmp_path / "promptd.db"
    acked: list[str] = []
    with _ingesting(live, acked):
        while len(acked) < 500:
            threading.Event().wait(0.02)
        acked_before = set(acked)
        out = run(None, "backup", str(tmp_path / "snap.db"), "--json",
                  "--database-url", f"sqlite:///{live_db}")
        taken = len(acked)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert (tmp_path / "snap.db").stat().st_mode & 0o777 == 0o600
    snapshot = _event_ids(tmp_path / "snap.db")
    # One commit's view: a prefix of the live log, with everything acknowledged before it.
    assert snapshot == _event_ids(live_db)[: len(snapshot)]
    assert report["events"] == len(snapshot) and report["position"] == len(snapshot)
    assert acked_before <= set(snapshot)
    assert taken > len(acked_before)  # ingest really ran while the backup was taken

    restored = tmp_path / "restored" / "promptd.db"
    out = run(None, "restore", str(tmp_path / "snap.db"), "--create",
              "--database-url", f"sqlite:///{restored}")
    assert out.returncode == 0, out.stderr
    assert f"restored {len(snapshot)} events" in out.stdout
    assert _event_ids(restored) == snapshot
    assert replay(f"sqlite:///{restored}").equal


def test_restore_refuses_a_log_that_already_holds_events_unless_forced(
    live: LiveDaemon, tmp_path: Path,
) -> None:
    live.create_prompt(PROMPT, "Answer {{ ticket }}")
    first = backup(live.settings.database_url, tmp_path / "first.db")
    live.create_prompt("backup/other", "Other {{ x }}")
    second = backup(live.settings.database_url, tmp_path / "second.db")
    assert second.position > first.position
    target = f"sqlite:///{tmp_path / 'target.db'}"
    restore(tmp_path / "second.db", target, folder=FOLDER, create=True)
    with pytest.raises(BackupError, match="already holds"):
        restore(tmp_path / "first.db", target, folder=FOLDER)
    assert inspect_backup(tmp_path / "target.db").position == second.position
    restore(tmp_path / "first.db", target, folder=FOLDER, force=True)
    assert inspect_backup(tmp_path / "target.db").position == first.position
    assert replay(target).equal


def test_restore_rejects_a_file_that_is_not_a_promptd_log(tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(BackupError, match="not a SQLite file"):
        restore(tmp_path / "junk.db", f"sqlite:///{tmp_path / 't.db'}", folder=FOLDER)
    with closing(sqlite3.connect(tmp_path / "other.db")) as conn:
        conn.execute("CREATE TABLE unrelated (x)")
    with pytest.raises(BackupError, match="no events table"):
        restore(tmp_path / "other.db", f"sqlite:///{tmp_path / 't.db'}", folder=FOLDER)
    with pytest.raises(BackupError, match="no such backup"):
        restore(tmp_path / "missing.db", f"sqlite:///{tmp_path / 't.db'}", folder=FOLDER)


@pytest.mark.postgres
def test_backing_up_postgresql_points_to_pg_dump(pg_url: str, tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="pg_dump"):
        backup(pg_url, tmp_path / "x.db")
    assert not (tmp_path / "x.db").exists()


@pytest.mark.postgres
def test_a_sqlite_backup_restores_into_an_empty_postgresql_database(
    live: LiveDaemon, tmp_path: Path, pg_url: str,
) -> None:
    live.create_prompt(PROMPT, "Answer {{ ticket }}")
    acked: list[str] = []
    with _ingesting(live, acked):
        while len(acked) < 200:
            threading.Event().wait(0.02)
    snap = backup(live.settings.database_url, tmp_path / "snap.db")
    restored = restore(tmp_path / "snap.db", pg_url, folder=FOLDER)
    assert restored.position == snap.position == snap.events
    assert replay(pg_url).equal
    with pytest.raises(BackupError, match="already holds"):
        restore(tmp_path / "snap.db", pg_url, folder=FOLDER, force=True)
