"""The one command path: load an aggregate, decide on it, append with its stream version.

Every decision promptd records goes through ``CommandHandler.run``: an admin's request, the
improver, the canary job, on any replica. The decision function is pure — it sees the
aggregate and returns the events to append (or refuses with ``CommandRefused``). If another
actor appended to the same stream in between, the database refuses the append
(``StreamConflict``), the handler reloads the stream and asks the decision function again,
so what lands is always a decision on the state it was made on. No lock in this process
guards an invariant: the expected version does, the same way across processes.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import structlog
from sqlalchemy import Engine

from service.commands.aggregates import PromptAggregate, TokenBookAggregate
from service.contract import system, uuid7
from service.store import eventlog
from service.store.eventlog import AppendResult, NewEvent, StreamConflict
from service.store.writer import EventWriter

log = structlog.get_logger("promptd.commands")
A = TypeVar("A", PromptAggregate, TokenBookAggregate)
# Under contention every round has one winner, so a stream with n deciders needs up to n
# rounds; jittered backoff spreads the losers out so that rounds are not wasted.
MAX_ATTEMPTS = 40
BACKOFF_S = (0.001, 0.05)  # first wait, cap


class CommandRefused(Exception):
    """A command that cannot be carried out; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, code: str, message: str,
                 details: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


@dataclass(frozen=True)
class Outcome(Generic[A]):
    """What a decision function returns: the events to append and what to answer."""

    events: Sequence[system.SystemEvent] = ()
    answer: Any = None
    # Filled by the handler: where the events landed, and the aggregate they were decided on.
    results: Sequence[AppendResult] = field(default=())
    decided_on: A | None = None


Decide = Callable[[A], Outcome[A]]


class _Streams(Generic[A]):
    """Aggregates of one kind, cached at the stream version they were folded to."""

    def __init__(self, engine: Engine, empty: Callable[[str], A]) -> None:
        self._engine = engine
        self._empty = empty
        self._cache: dict[str, A] = {}
        self._lock = threading.Lock()

    def load(self, stream: str) -> A:
        """Return the aggregate with every event of ``stream`` committed so far folded in."""
        with self._lock:
            cached = self._cache.get(stream)
        agg = cached if cached is not None else self._empty(stream)
        with self._engine.connect() as conn:
            new = eventlog.read_stream(conn, stream, after_version=agg.version)
        if new:
            agg = agg.evolve(new)  # type: ignore[assignment]
            with self._lock:
                current = self._cache.get(stream)
                if current is None or current.version < agg.version:
                    self._cache[stream] = agg
        return agg


class CommandHandler:
    """Runs decision functions against freshly loaded aggregates, with bounded retries."""

    def __init__(self, engine: Engine, writer: EventWriter, clock: Callable[[], float]) -> None:
        self._writer = writer
        self._clock = clock
        self._prompts: _Streams[PromptAggregate] = _Streams(
            engine, lambda stream: PromptAggregate(name=stream.split(":", 1)[1]))
        self._tokens: _Streams[TokenBookAggregate] = _Streams(
            engine, lambda _: TokenBookAggregate())

    def prompt(self, name: str) -> PromptAggregate:
        """Return the prompt aggregate as committed now."""
        return self._prompts.load(system.prompt_stream(name))

    def token_book(self) -> TokenBookAggregate:
        """Return the token book as committed now."""
        return self._tokens.load(system.TOKENS_STREAM)

    def on_prompt(self, name: str, decide: Decide[PromptAggregate]) -> Outcome[PromptAggregate]:
        """Decide on prompt ``name`` and append the outcome at the version decided on."""
        return self._run(system.prompt_stream(name), self._prompts, decide)

    def on_tokens(self, decide: Decide[TokenBookAggregate]) -> Outcome[TokenBookAggregate]:
        """Decide on the token book and append the outcome at the version decided on."""
        return self._run(system.TOKENS_STREAM, self._tokens, decide)

    def append_at(self, events: Sequence[system.SystemEvent],
                  expected: dict[str, int]) -> list[AppendResult]:
        """Append events decided elsewhere on the given stream versions (``StreamConflict``)."""
        return self._writer.append([self.new_event(e) for e in events], expected)

    def record(self, event: system.SystemEvent) -> AppendResult:
        """Append one event that decides nothing others could contradict (no expectation)."""
        return self._writer.append([self.new_event(event)])[0]

    def new_event(self, event: system.SystemEvent) -> NewEvent:
        """Return the log entry of a system event, stamped with an id and the clock."""
        return NewEvent(uuid7(), event.TYPE, event.stream(), event.payload(), self._clock())

    def _run(self, stream: str, streams: _Streams[A], decide: Decide[A]) -> Outcome[A]:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            agg = streams.load(stream)
            outcome = decide(agg)
            if not outcome.events:
                return Outcome(outcome.events, outcome.answer, (), agg)
            foreign = {e.stream() for e in outcome.events} - {stream}
            if foreign:
                raise ValueError(f"a decision on {stream} may only append to it, not {foreign}")
            try:
                results = self._writer.append([self.new_event(e) for e in outcome.events],
                                              {stream: agg.version})
            except StreamConflict as exc:
                log.info("command_conflict", stream=stream, attempt=attempt,
                         expected=exc.expected, actual=exc.actual)
                first, cap = BACKOFF_S
                time.sleep(random.uniform(0, min(cap, first * 2 ** attempt)))
                continue
            return Outcome(outcome.events, outcome.answer, results, agg)
        raise CommandRefused(409, "conflict", f"{stream} kept changing while the command was "
                             f"decided ({MAX_ATTEMPTS} attempts); try again")
