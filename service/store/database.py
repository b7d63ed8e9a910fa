"""Engines for the two backends, with the durability settings DESIGN.md section 3 requires."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

from service.store.schema import metadata

SQLITE_BUSY_TIMEOUT_MS = 10_000
SCHEMA_LOCK_KEY = 0x70726F6E  # PostgreSQL advisory lock held while creating the schema

# Nothing ever updates or deletes a row of the log: the database refuses it, not just our code.
_SQLITE_GUARDS = (
    """CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
       BEGIN SELECT RAISE(ABORT, 'events is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
       BEGIN SELECT RAISE(ABORT, 'events is append-only'); END""",
)
_PG_GUARDS = (
    """CREATE OR REPLACE FUNCTION promptd_events_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'events is append-only'; END; $$ LANGUAGE plpgsql""",
    # Created only when missing: (re)creating a trigger locks the table against readers.
    """DO $$ BEGIN
         IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'events_append_only'
                        AND tgrelid = 'events'::regclass) THEN
           CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
             FOR EACH ROW EXECUTE FUNCTION promptd_events_append_only();
         END IF;
         IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'events_no_truncate'
                        AND tgrelid = 'events'::regclass) THEN
           CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
             FOR EACH STATEMENT EXECUTE FUNCTION promptd_events_append_only();
         END IF;
       END $$""",
)


def sqlite_path(url: str) -> Path | None:
    """Return the file behind a SQLite URL, or None for other backends and :memory:."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


class SchemaMismatch(RuntimeError):
    """The database holds a promptd log this version cannot append to; the message says why."""


def _check_log_columns(conn: Any) -> None:
    # A log written before decisions carried stream versions cannot take expected-version
    # appends, and its rows may not be rewritten (the log is append-only): refuse to start.
    columns = {c["name"] for c in inspect(conn).get_columns("events")}
    if "stream_version" not in columns:
        raise SchemaMismatch(
            "this database holds a log written by an older promptd (its events carry no "
            "stream versions); serve it with that version, or start a new database")


def _create_schema(engine: Engine) -> None:
    postgres = engine.dialect.name == "postgresql"
    with engine.connect() as conn:
        if postgres:
            # Catalog lookups must see the tables a replica starting at the same time just
            # committed, whatever isolation the engine reads with.
            conn.execution_options(isolation_level="READ COMMITTED")
        with conn.begin():
            if postgres:
                # Replicas starting together would race to create the same tables.
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
            metadata.create_all(conn)
            _check_log_columns(conn)
            for stmt in _PG_GUARDS if postgres else _SQLITE_GUARDS:
                conn.execute(text(stmt))


def create_log_engine(url: str, *, for_writing: bool = True, **kwargs: Any) -> Engine:
    """Return an engine for ``url`` with WAL + synchronous=FULL on SQLite; creates the schema.

    ``for_writing=False`` gives plain deferred transactions on SQLite: a reader that must see
    one consistent snapshot (replay, backup) without holding the write lock.
    """
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            # Create it 0600 before SQLite does, so the log is never world-readable.
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        os.chmod(path, 0o600)
        engine = create_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            **kwargs,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Take transaction control from the driver so BEGIN IMMEDIATE is ours to issue.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # IMMEDIATE: take the write lock at BEGIN, so two writers queue instead of
            # deadlocking on a read-to-write upgrade.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if for_writing else "BEGIN")

    else:
        kwargs.setdefault("pool_pre_ping", True)
        if not for_writing:
            # One snapshot for the whole transaction, as SQLite's deferred BEGIN gives: a
            # replay or backup must not see commits that land while it reads.
            kwargs.setdefault("isolation_level", "REPEATABLE READ")
        engine = create_engine(url, **kwargs)
    _create_schema(engine)
    if path is not None:
        for suffix in ("-wal", "-shm"):
            side = Path(str(path) + suffix)
            if side.exists():
                os.chmod(side, 0o600)
    return engine
