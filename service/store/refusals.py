"""Why the log refuses an append: stale decisions, bad references, conflicting retries.

Kept apart from the log's code so callers (writer, HTTP) can name them without the SQL.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reference:
    """An event another event is about: it must be in the log first, in this stream."""

    event_id: str
    stream: str
    type: str



class EventLogError(RuntimeError):
    """The log could not be read or written (database unreachable, locked, full)."""


class StreamConflict(Exception):
    """A decision was made on a stream version that is no longer current.

    The caller reloads the stream and decides again, or answers 409 naming what changed.
    """

    def __init__(self, stream: str, expected: int, actual: int) -> None:
        super().__init__(f"{stream} is at version {actual}, not {expected}: "
                         "it changed since the decision was made")
        self.stream = stream
        self.expected = expected
        self.actual = actual


class EventRefused(Exception):
    """One event of a request cannot be appended; the request appends nothing.

    ``index`` is the event's place in its request, so the caller can name the field.
    """

    def __init__(self, index: int, event_id: str, message: str) -> None:
        super().__init__(message)
        self.index, self.event_id, self.message = index, event_id, message


class EventIdConflict(EventRefused):
    """The event id is already in the log with a different event (a retry must be identical)."""

    def __init__(self, index: int, event_id: str, position: int | None) -> None:
        where = (f"is already in the log at position {position}" if position is not None
                 else "comes twice in this request")
        super().__init__(index, event_id, f"event {event_id} {where} with a different "
                         "payload; a retry must resend the same event, a new event needs a "
                         "new event_id")
        self.position = position


class MissingReference(EventRefused):
    """The event refers to an event the log does not hold (before it) in the stream named."""

    def __init__(self, index: int, event_id: str, reference: Reference,
                 found: tuple[str, str] | None) -> None:
        if found is None:
            why = f"there is no {reference.type} {reference.event_id} in the log before it"
        else:
            why = (f"{reference.event_id} is a {found[1]} in {found[0]}, not a "
                   f"{reference.type} in {reference.stream}")
        super().__init__(index, event_id, why)
        self.reference = reference
