"""Expected-version appends: the event-log contract for decisions, on every backend.

A decision is appended with the version of its stream it was decided on; the database makes
a second decision on the same version fail, across threads and processes alike.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from service.contract.ids import uuid7
from service.projections import Projector, default_projections
from service.store import eventlog
from service.store.database import create_log_engine
from service.store.eventlog import NewEvent, StreamConflict
from service.store.writer import EventWriter

STREAM = "prompt:p"


@pytest.fixture
def engine(log_url: str) -> Iterator[Engine]:
    eng = create_log_engine(log_url)
    yield eng
    eng.dispose()


def _decision(stream: str = STREAM, n: int = 0) -> NewEvent:
    return NewEvent(uuid7(), "policy.set", stream, {"prompt": "p", "overrides": {"n": n},
                                                    "actor": "test"}, 1000.0 + n)


def _traffic(n: int = 0) -> NewEvent:
    return NewEvent(uuid7(), "execution", STREAM, {"prompt": "p", "version": 1, "i": n},
                    1000.0 + n, versioned=False)


def _append(engine: Engine, batch: list[NewEvent],
            expected: dict[str, int] | None = None) -> list[eventlog.AppendResult]:
    with engine.begin() as conn:
        return eventlog.append(conn, batch, expected=expected)


def _version(engine: Engine, stream: str = STREAM) -> int:
    with engine.connect() as conn:
        return eventlog.stream_versions(conn, [stream])[stream]


def test_versioned_events_take_consecutive_versions_of_their_own_stream(engine: Engine) -> None:
    first = _append(engine, [_decision(n=1), _decision("prompt:q", 2), _decision(n=3)])
    assert [r.stream_version for r in first] == [1, 1, 2]
    assert _version(engine) == 2 and _version(engine, "prompt:q") == 1
    with engine.connect() as conn:
        stored = eventlog.read_stream(conn, STREAM)
    assert [(e.stream_version, e.payload["overrides"]["n"]) for e in stored] == [(1, 1), (2, 3)]


def test_a_decision_on_a_stale_version_conflicts_and_stores_nothing(engine: Engine) -> None:
    _append(engine, [_decision(n=1)], {STREAM: 0})
    _append(engine, [_decision(n=2)], {STREAM: 1})
    with pytest.raises(StreamConflict) as err:
        _append(engine, [_decision(n=3), _decision("prompt:other", 4)], {STREAM: 1})
    assert (err.value.stream, err.value.expected, err.value.actual) == (STREAM, 1, 2)
    with engine.connect() as conn:
        assert eventlog.head_position(conn) == 2  # neither event of the refused batch landed


def test_expected_version_zero_means_the_stream_must_not_exist_yet(engine: Engine) -> None:
    _append(engine, [_decision(n=1)], {STREAM: 0})
    with pytest.raises(StreamConflict):
        _append(engine, [_decision(n=2)], {STREAM: 0})


def test_agent_traffic_takes_no_version_and_never_makes_a_decision_conflict(
        engine: Engine) -> None:
    _append(engine, [_decision(n=1)], {STREAM: 0})
    traffic = _append(engine, [_traffic(i) for i in range(3)])
    assert [r.stream_version for r in traffic] == [None, None, None]
    assert _version(engine) == 1
    decided = _append(engine, [_decision(n=2)], {STREAM: 1})  # decided before the traffic
    assert decided[0].stream_version == 2


def test_a_retried_decision_is_answered_as_duplicates_not_as_a_conflict(engine: Engine) -> None:
    batch = [_decision(n=1), _decision(n=2)]
    first = _append(engine, batch, {STREAM: 0})
    again = _append(engine, batch, {STREAM: 0})
    assert all(r.duplicate for r in again)
    assert [r.position for r in again] == [r.position for r in first]


def test_the_database_itself_refuses_two_events_at_one_stream_version(engine: Engine) -> None:
    _append(engine, [_decision(n=1)])
    with pytest.raises(IntegrityError), engine.begin() as conn:  # past our own checks
        conn.execute(text(
            "INSERT INTO events (position, event_id, type, stream, stream_version, recorded_at,"
            " schema_version, payload) VALUES (2, 'evt-raw-0001', 'policy.set', :s, 1, 0, 1,"
            " '{}')"), {"s": STREAM})


def test_in_one_group_commit_a_conflicting_request_fails_alone(engine: Engine) -> None:
    _append(engine, [_decision(n=0)], {STREAM: 0})
    with engine.begin() as conn:
        writer_outcomes = eventlog.append_group(conn, [
            ([_decision(n=1)], {STREAM: 1}),
            ([_decision(n=2)], {STREAM: 1}),  # decided on the same version: loses
            ([_decision("prompt:q", 3)], {"prompt:q": 0}),
            ([_traffic(4)], None),
        ])
    assert isinstance(writer_outcomes[1], StreamConflict)
    assert [o[0].stream_version for i, o in enumerate(writer_outcomes)  # type: ignore[index]
            if i != 1] == [2, 1, None]


def test_the_writer_fails_only_the_stale_request_of_a_group(engine: Engine) -> None:
    writer = EventWriter(engine, Projector(default_projections()))
    writer.start()
    try:
        futures = [writer.submit([_decision(n=i)], {STREAM: 0}) for i in range(5)]
        outcomes = [f.exception(10) or f.result() for f in futures]
    finally:
        writer.stop()
    kinds = Counter(type(o).__name__ for o in outcomes)
    assert kinds == {"list": 1, "StreamConflict": 4}
    assert _version(engine) == 1


def _contend(engine: Engine, rounds: int, won: list[int]) -> None:
    for _ in range(rounds):
        while True:
            seen = _version(engine)
            try:
                _append(engine, [_decision(n=seen)], {STREAM: seen})
            except StreamConflict:
                continue
            won.append(seen)
            break


def test_many_threads_deciding_on_one_stream_each_win_a_distinct_version(
        engine: Engine) -> None:
    won: list[int] = []
    threads = [threading.Thread(target=_contend, args=(engine, 25, won)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(won) == list(range(200))  # every version decided on exactly once
    with engine.connect() as conn:
        stored = eventlog.read_stream(conn, STREAM)
    assert [e.stream_version for e in stored] == list(range(1, 201))
    # Each event was decided on the version just before its own.
    assert all(e.payload["overrides"]["n"] == e.stream_version - 1 for e in stored)
    assert [e.position for e in stored] == list(range(1, 201))


def _contend_in_process(url: str, rounds: int, out: multiprocessing.Queue[int]) -> None:
    engine = create_log_engine(url)
    won: list[int] = []
    _contend(engine, rounds, won)
    for v in won:
        out.put(v)
    engine.dispose()


@pytest.mark.slow
def test_many_processes_deciding_on_one_stream_each_win_a_distinct_version(
        log_url: str, engine: Engine) -> None:
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[int] = ctx.Queue()
    procs = [ctx.Process(target=_contend_in_process, args=(log_url, 20, out)) for _ in range(4)]
    for p in procs:
        p.start()
    won = [out.get(timeout=180) for _ in range(80)]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert sorted(won) == list(range(80))
    with engine.connect() as conn:
        stored = eventlog.read_stream(conn, STREAM)
    assert [e.stream_version for e in stored] == list(range(1, 81))
