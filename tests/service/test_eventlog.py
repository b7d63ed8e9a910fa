"""The event-log contract: one suite, every backend (the `log_url` fixture)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from service.contract.ids import uuid7
from service.projections import Projector, default_projections
from service.store import eventlog
from service.store.database import create_log_engine
from service.store.eventlog import NewEvent
from service.store.writer import EventWriter


@pytest.fixture
def engine(log_url: str) -> Iterator[Engine]:
    eng = create_log_engine(log_url)
    yield eng
    eng.dispose()


def _event(i: int = 0, event_id: str | None = None) -> NewEvent:
    return NewEvent(event_id or uuid7(), "execution", "prompt:p",
                    {"prompt": "p", "version": 1, "success": True, "i": i}, 1000.0 + i)


def _append(engine: Engine, batch: list[NewEvent]) -> list[eventlog.AppendResult]:
    with engine.begin() as conn:
        return eventlog.append(conn, batch)


def test_positions_start_at_one_and_are_dense(engine: Engine) -> None:
    results = _append(engine, [_event(i) for i in range(5)])
    assert [r.position for r in results] == [1, 2, 3, 4, 5]
    assert not any(r.duplicate for r in results)
    more = _append(engine, [_event(9)])
    assert more[0].position == 6


def test_appending_an_existing_event_id_is_a_noop_reporting_the_original_position(
    engine: Engine,
) -> None:
    first = _append(engine, [_event(1, "evt-00000001"), _event(2)])
    again = _append(engine, [_event(3, "evt-00000001"), _event(4)])
    assert again[0].duplicate and again[0].position == first[0].position
    assert not again[1].duplicate and again[1].position == 3
    with engine.connect() as conn:
        stored = eventlog.read(conn)
    assert [e.payload["i"] for e in stored] == [1, 2, 4]  # the duplicate's payload never landed


def test_same_event_id_twice_in_one_batch_is_stored_once(engine: Engine) -> None:
    results = _append(engine, [_event(1, "evt-twice-01"), _event(2, "evt-twice-01")])
    assert results[0].position == results[1].position == 1
    assert results[1].duplicate


def test_read_by_position_range_and_type(engine: Engine) -> None:
    _append(engine, [_event(i) for i in range(10)])
    with engine.connect() as conn:
        assert [e.position for e in eventlog.read(conn, 3, 4)] == [4, 5, 6, 7]
        assert [e.position for e in eventlog.read(conn, 0, 100, upto=2)] == [1, 2]
        assert eventlog.read(conn, 0, 100, types=["correction"]) == []
        assert eventlog.head_position(conn) == 10


def test_payload_round_trips_unicode_and_nesting(engine: Engine) -> None:
    payload = {"prompt": "p", "text": "naïve 日本語 🎉", "nested": {"a": [1, 2.5, None]}}
    _append(engine, [NewEvent(uuid7(), "execution", "prompt:p", payload, 1.0)])
    with engine.connect() as conn:
        (stored,) = eventlog.read(conn)
    assert stored.payload == payload


def test_the_database_refuses_updates_and_deletes_of_events(engine: Engine) -> None:
    _append(engine, [_event(1)])
    for stmt in ("UPDATE events SET type = 'x'", "DELETE FROM events"):
        with pytest.raises(DBAPIError), engine.begin() as conn:
            conn.execute(text(stmt))
    with engine.connect() as conn:
        assert eventlog.head_position(conn) == 1


def test_concurrent_writers_keep_positions_dense_and_in_commit_order(log_url: str) -> None:
    # Separate engines act like separate processes: each commits on its own.
    engines = [create_log_engine(log_url) for _ in range(6)]
    per_thread, batch = 30, 5
    errors: list[BaseException] = []

    def work(eng: Engine, tid: int) -> None:
        try:
            for k in range(per_thread):
                _append(eng, [NewEvent(uuid7(), "execution", f"prompt:t{tid}",
                                       {"t": tid, "k": k, "j": j}, 1.0) for j in range(batch)])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(e, i)) for i, e in enumerate(engines)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    with engines[0].connect() as conn:
        stored = eventlog.read(conn, 0, 100_000)
    total = len(engines) * per_thread * batch
    assert [e.position for e in stored] == list(range(1, total + 1))
    # Each writer's own events appear in the order it committed them, batches unbroken.
    for tid in range(len(engines)):
        mine = [(e.payload["k"], e.payload["j"]) for e in stored if e.payload["t"] == tid]
        assert mine == sorted(mine)
    for e in engines:
        e.dispose()


def test_group_commit_writer_answers_each_request_with_its_own_positions(engine: Engine) -> None:
    writer = EventWriter(engine, Projector(default_projections()))
    writer.start()
    try:
        futures = [writer.submit([_event(i), _event(i + 100)]) for i in range(50)]
        results = [f.result(10) for f in futures]
    finally:
        writer.stop()
    positions = sorted(r.position for res in results for r in res)
    assert positions == list(range(1, 101))
    for res in results:  # a request's events stay together and in order
        assert res[1].position == res[0].position + 1


def test_writer_stop_commits_everything_already_queued(engine: Engine) -> None:
    writer = EventWriter(engine, Projector(default_projections()))
    writer.start()
    futures = [writer.submit([_event(i)]) for i in range(200)]
    writer.stop()
    assert all(f.done() and not f.exception() for f in futures)
    with engine.connect() as conn:
        assert eventlog.head_position(conn) == 200
