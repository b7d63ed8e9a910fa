"""PostgreSQL as several processes share it: positions, folds, replay, start-up, leadership."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from service.contract.ids import uuid7
from service.projections import Projector, default_projections
from service.projections.replay import replay
from service.runtime.scheduler import Leadership
from service.store import eventlog
from service.store.database import create_log_engine
from service.store.eventlog import NewEvent
from service.store.schema import version_counts
from service.store.writer import EventWriter
from tests.support import live_daemon

pytestmark = pytest.mark.postgres


@dataclass(frozen=True)
class _Txn:
    writer: int
    began: float
    committed: float
    positions: tuple[int, ...]


def _execution(writer: int, k: int, j: int) -> NewEvent:
    return NewEvent(uuid7(), "execution", "prompt:race",
                    {"prompt": "race", "version": 1, "success": (k + j) % 3 != 0,
                     "latency_ms": 10.0 + j, "w": writer, "k": k, "j": j}, 1000.0 + k)


def _run_all(workers: list[Callable[[], None]]) -> list[BaseException]:
    """Run ``workers`` on threads released together; return what any of them raised."""
    errors: list[BaseException] = []
    start = threading.Barrier(len(workers))

    def wrap(work: Callable[[], None]) -> None:
        try:
            start.wait()
            work()
        except BaseException as exc:  # surfaced by the caller's assertion
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return errors


def test_a_reader_tailing_by_position_never_sees_a_gap_while_many_writers_commit(
    pg_url: str,
) -> None:
    writers, txns_per_writer, batch = 8, 25, 4
    total = writers * txns_per_writer * batch
    engines = [create_log_engine(pg_url, pool_size=1) for _ in range(writers + 1)]
    committed: list[_Txn] = []
    tail: list[int] = []
    gaps: list[tuple[int, list[int]]] = []
    done = threading.Event()

    def write(w: int) -> Callable[[], None]:
        def work() -> None:
            for k in range(txns_per_writer):
                began = time.monotonic()
                with engines[w].begin() as conn:
                    res = eventlog.append(conn, [_execution(w, k, j) for j in range(batch)])
                committed.append(_Txn(w, began, time.monotonic(),
                                      tuple(r.position for r in res)))
        return work

    def read() -> None:
        after = 0
        deadline = time.monotonic() + 60
        while after < total and time.monotonic() < deadline:
            with engines[-1].connect() as conn:
                page = [e.position for e in eventlog.read(conn, after, 50)]
            if page != list(range(after + 1, after + 1 + len(page))):
                gaps.append((after, page))  # a position was skipped: it may fill in later
            tail.extend(page)
            after = page[-1] if page else after
        done.set()

    errors = _run_all([*(write(w) for w in range(writers)), read])
    for e in engines:
        e.dispose()
    assert not errors, errors
    assert not gaps, f"the tailing reader saw gaps: {gaps[:3]}"
    assert tail == list(range(1, total + 1))
    # Commit order is position order: a transaction that committed before another began
    # holds only lower positions; and each writer's own positions rise.
    for a, b in itertools.permutations(committed, 2):
        if a.committed < b.began:
            assert max(a.positions) < min(b.positions), (a, b)
    for w in range(writers):
        mine = [p for t in committed if t.writer == w for p in t.positions]
        assert mine == sorted(mine) and len(mine) == txns_per_writer * batch


def test_two_writers_on_one_database_fold_every_event_exactly_once(pg_url: str) -> None:
    processes = 2
    engines = [create_log_engine(pg_url) for _ in range(processes)]
    writers = [EventWriter(e, Projector(default_projections())) for e in engines]
    for w in writers:
        w.start()
    per_thread, batch = 15, 5

    def post(t: int) -> Callable[[], None]:
        def work() -> None:
            for k in range(per_thread):
                writers[t % processes].append([_execution(t, k, j) for j in range(batch)])
        return work

    try:
        errors = _run_all([post(t) for t in range(6)])
    finally:
        for w in writers:
            w.stop()
    assert not errors, errors
    total = 6 * per_thread * batch
    with engines[0].connect() as conn:
        head = eventlog.head_position(conn)
        row = conn.execute(select(version_counts)).one()
        lag = Projector(default_projections()).lag(conn)
    for e in engines:
        e.dispose()
    assert head == total and lag == 0
    assert row.executions == total
    assert row.successes == sum(1 for t in range(6) for k in range(per_thread)
                                for j in range(batch) if (k + j) % 3 != 0)
    assert replay(pg_url).equal


def test_replay_reads_one_snapshot_while_writers_keep_appending(pg_url: str) -> None:
    engine = create_log_engine(pg_url)
    writer = EventWriter(engine, Projector(default_projections()))
    writer.start()
    stop = threading.Event()

    def keep_writing() -> None:
        k = 0
        while not stop.is_set():
            writer.append([_execution(0, k, j) for j in range(3)])
            k += 1

    background = threading.Thread(target=keep_writing)
    background.start()
    try:
        while writer.position < 90:
            time.sleep(0.01)
        reports = [replay(pg_url) for _ in range(2)]
    finally:
        stop.set()
        background.join(30)
        writer.stop()
        engine.dispose()
    assert all(r.equal for r in reports), [t for r in reports for t in r.tables if not t.equal]
    assert reports[-1].position > reports[0].position  # the writers really were running


def test_replicas_starting_together_on_an_empty_database_all_come_up(pg_url: str) -> None:
    engines: list[Engine] = []

    def start() -> None:
        engines.append(create_log_engine(pg_url))

    errors = _run_all([start] * 4)
    try:
        assert not errors, errors
        with engines[0].begin() as conn:
            eventlog.append(conn, [_execution(0, 0, 0)])
            with pytest.raises(Exception, match="append-only"), conn.begin_nested():
                conn.execute(text("DELETE FROM events"))
    finally:
        for e in engines:
            e.dispose()


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_one_process_leads_and_another_takes_over_when_the_leader_session_ends(
    pg_url: str,
) -> None:
    engines = [create_log_engine(pg_url) for _ in range(3)]
    first, second = Leadership(engines[0]), Leadership(engines[1])
    try:
        assert first.acquire() is True
        assert second.acquire() is False
        assert first.acquire() is True  # confirming keeps it
        # The leader's process dies: its session ends and PostgreSQL frees the lock.
        with engines[2].connect() as conn:
            ended = conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted")).scalar_one()
        assert ended == 1
        assert _wait_for(second.acquire)
        assert first.acquire() is False  # the old leader notices it lost the lock
        second.release()
        assert _wait_for(first.acquire)
    finally:
        first.release()
        second.release()
        for e in engines:
            e.dispose()


def test_values_postgresql_cannot_store_are_refused_with_422_naming_the_field(
    tmp_path: Path, pg_url: str,
) -> None:
    with live_daemon(tmp_path, database_url=pg_url) as live:
        live.create_prompt("pg/prompt", "Answer {{ ticket }}")
        agent = live.client(live.issue("agent"))
        base = {"type": "execution", "prompt": "pg/prompt", "version": 1, "success": False}
        bad = [({**base, "error_type": "Timeout\x00"}, "error_type"),
               ({**base, "input_text": "ticket\x00 42"}, "input_text"),
               ({**base, "version": 2**31}, "version"),
               ({"type": "correction", "execution_id": "exec-00000001", "prompt": "pg/prompt",
                 "version": 1, "category": "tone", "reason": "rude\x00"}, "reason")]
        for event, field_name in bad:
            r = agent.post("/v1/events", json={"events": [event]})
            assert r.status_code == 422, r.text
            assert field_name in r.json()["error"]["message"]
        r = agent.post("/v1/events", json={"events": [{**base, "error_type": "Timeout"}]})
        assert r.status_code == 200, r.text
        with live.daemon.engine.connect() as conn:
            stored = [e.type for e in eventlog.read(conn, 0, 100)]
        assert stored.count("execution") == 1 and "correction" not in stored
