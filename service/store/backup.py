"""``promptd backup`` and ``promptd restore``: a consistent copy of the SQLite log, and back.

A backup is one self-contained SQLite file taken with SQLite's online backup API in a single
step, i.e. one read transaction: in WAL mode the daemon keeps writing meanwhile and the copy
is the log exactly as it stood at one commit. A restore copies such a file into an empty
SQLite database (page by page, so it is bit-identical, read models included) or into an empty
PostgreSQL database (events copied verbatim, read models folded from them: the way to move
from SQLite to PostgreSQL). PostgreSQL itself is backed up with ``pg_dump`` (ops/BACKUP.md).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from service.store import eventlog
from service.store.database import create_log_engine, sqlite_path
from service.store.eventlog import StoredEvent
from service.store.identity import Kind, NotOurDatabase, inspect_sqlite_file
from service.store.ownership import DatabaseInUse, DatabaseLock, holder
from service.store.writer import Folder

_CHUNK = 5000
PG_DUMP_HINT = ("back up PostgreSQL with pg_dump, e.g. `pg_dump --format=custom --file "
                "promptd.dump DBNAME`, and restore it with pg_restore (see ops/BACKUP.md)")


class BackupError(RuntimeError):
    """A backup or restore could not be made (wrong backend, bad file, non-empty target)."""


@dataclass(frozen=True)
class BackupReport:
    """What a backup file (or a restored database) holds."""

    path: Path
    events: int
    position: int
    size_bytes: int


def _connect_ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def _log_extent(conn: sqlite3.Connection) -> tuple[int, int]:
    row = conn.execute("SELECT count(*), coalesce(max(position), 0) FROM events").fetchone()
    return int(row[0]), int(row[1])


def _has_events_table(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                        "AND name = 'events'").fetchone() is not None


def inspect_backup(path: str | Path) -> BackupReport:
    """Return what a backup file holds; raise ``BackupError`` if it is not a sound promptd log."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"{path}: no such backup file")
    try:
        with closing(_connect_ro(path)) as conn:
            check = conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise BackupError(f"{path}: damaged SQLite file ({check})")
            if not _has_events_table(conn):
                raise BackupError(f"{path}: not a promptd log (no events table)")
            events, position = _log_extent(conn)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path}: not a SQLite file ({exc})") from exc
    return BackupReport(path, events, position, path.stat().st_size)


def _sqlite_file(url: str, role: str) -> Path:
    path = sqlite_path(url)
    if path is not None:
        return path
    if url.startswith("postgresql"):
        raise BackupError(f"{role} is PostgreSQL: {PG_DUMP_HINT}")
    raise BackupError(f"{role} {url!r} is not a SQLite file")


def _create_private(path: Path) -> None:
    """Create ``path`` 0600 (never world-readable); it must not exist yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW, 0o600))
    os.chmod(path, 0o600)


def _ours(path: Path, role: str) -> Kind:
    """Return what ``path`` is, or raise ``BackupError`` if promptd must leave it alone."""
    try:
        return inspect_sqlite_file(path)
    except NotOurDatabase as exc:
        raise BackupError(f"{role}: {exc}") from None


def backup(url: str, path: str | Path) -> BackupReport:
    """Copy the SQLite log at ``url`` to ``path`` (safe while the daemon writes); report it.

    ``path`` may replace an earlier promptd backup, never another file.
    """
    source = _sqlite_file(url, "the database")
    target = Path(path)
    kind = _ours(source, "the database")
    if kind is Kind.MISSING:
        raise BackupError(f"{source}: no such database (from {Path.cwd()}); give the daemon's "
                          "database with --database-url or PROMPTD_DATABASE_URL")
    if kind is Kind.EMPTY:
        raise BackupError(f"{source} holds no promptd log yet")
    if target.exists() and target.resolve() == source.resolve():
        raise BackupError("the backup file must not be the live database")
    if _ours(target, "the backup file") is not Kind.MISSING and holder(target) is not None:
        raise BackupError(f"{target} is the live database of a running promptd")
    # A name of our own for the copy in progress: nothing that exists is ever removed.
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    _create_private(partial)
    try:
        with closing(sqlite3.connect(source, timeout=30)) as src, \
                closing(sqlite3.connect(partial)) as dst:
            # One step (pages=-1) is one read transaction: a snapshot at a single commit,
            # never restarted by the writes the daemon goes on making.
            src.backup(dst, pages=-1)
            # A self-contained file: no -wal beside it to lose when it is copied elsewhere.
            dst.execute("PRAGMA journal_mode=DELETE")
            dst.commit()
        with open(partial, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return inspect_backup(target)


def _stored_events(conn: sqlite3.Connection) -> Iterator[list[StoredEvent]]:
    after = 0
    while True:
        rows = conn.execute(
            "SELECT position, event_id, type, stream, recorded_at, payload, stream_version "
            "FROM events WHERE position > ? ORDER BY position LIMIT ?", (after, _CHUNK)).fetchall()
        if not rows:
            return
        yield [StoredEvent(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]), r[6]) for r in rows]
        after = rows[-1][0]


def _restore_sqlite(source: Path, url: str, force: bool, create: bool) -> None:
    target = _sqlite_file(url, "the target")
    kind = _ours(target, "the target")
    if kind is Kind.MISSING and not create:
        # Run from the wrong folder, a relative URL names a new file nobody serves.
        raise BackupError(f"{target}: no such database (from {Path.cwd()}, that is "
                          f"{target.absolute()}); give the daemon's database with "
                          "--database-url, or pass --create to restore into a new file")
    if target.exists() and target.resolve() == source.resolve():
        raise BackupError("cannot restore a backup onto itself")
    # A daemon serving the target would keep answering from a log that is being replaced
    # under it (and lose what it acknowledged meanwhile): never, with or without --force.
    claim = DatabaseLock(target)
    try:
        claim.acquire()
    except DatabaseInUse as exc:
        raise BackupError(f"{target} is in use by promptd (pid {exc.pid or 'unknown'}): stop "
                          "it before restoring, with or without --force") from None
    try:
        _replace_sqlite(source, target, url, force)
    finally:
        claim.release()


def _replace_sqlite(source: Path, target: Path, url: str, force: bool) -> None:
    if target.exists() and target.stat().st_size > 0:
        with closing(sqlite3.connect(target, timeout=30)) as conn:
            events = _log_extent(conn)[0] if _has_events_table(conn) else 0
        if events and not force:
            raise BackupError(f"{target} already holds {events} events; stop the daemon and "
                              "pass --force to replace them")
    elif not target.exists():
        _create_private(target)
    with closing(_connect_ro(source)) as src, \
            closing(sqlite3.connect(target, timeout=30)) as dst:
        # Page by page into the target's own journal: a stale -wal beside the target can
        # never be replayed over the restored pages.
        src.backup(dst, pages=-1)
    create_log_engine(url).dispose()  # WAL, synchronous=FULL, guards: as the daemon opens it


def _restore_postgres(source: Path, url: str, force: bool, folder: Folder) -> None:
    engine = create_log_engine(url)
    try:
        with engine.connect() as conn:
            present = eventlog.head_position(conn)
        if present:
            hint = " (--force cannot empty an append-only log: drop and recreate the database)"
            raise BackupError(f"the target database already holds events up to position "
                              f"{present}{hint if force else '; restore into an empty one'}")
        with engine.connect() as conn:
            positions = folder.positions(conn)
        with closing(_connect_ro(source)) as src:
            for batch in _stored_events(src):
                with engine.begin() as conn:
                    eventlog.lock_for_writing(conn)
                    eventlog.copy_events(conn, batch)
                    positions = folder.apply(conn, batch, positions)
    finally:
        engine.dispose()


def restore(path: str | Path, url: str, *, folder: Folder, force: bool = False,
            create: bool = False) -> BackupReport:
    """Load the backup at ``path`` into the database at ``url``; report what it now holds.

    ``folder`` (the read models, ``service.projections.Projector``) folds the events as they
    are copied into PostgreSQL; a SQLite backup already holds its read models. Refuses a target
    that already holds events unless ``force`` (SQLite only: a PostgreSQL
    log is append-only and must be recreated empty), a SQLite target that does not exist
    unless ``create``, and a file that is not a promptd database, always. Stop the daemon
    before restoring.
    """
    report = inspect_backup(path)
    if url.startswith("postgresql"):
        _restore_postgres(report.path, url, force, folder)
    else:
        _restore_sqlite(report.path, url, force, create)
    engine = create_log_engine(url, for_writing=False)
    try:
        with engine.connect() as conn:
            position = eventlog.head_position(conn)
    finally:
        engine.dispose()
    if position != report.position:
        raise BackupError(f"restore ended at position {position}, the backup at "
                          f"{report.position}")
    return report
