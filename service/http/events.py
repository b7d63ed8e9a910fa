"""Ingest (agents) and tailing (admins) of the event log."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query

from deploy.state import EVENT_TYPES as DEPLOYMENT_FOLDS
from service.contract import CorrectionIn, EventBatch, ExecutionIn, payload_of, system
from service.contract.responses import AppendedEvent, AppendResponse, EventPage
from service.contract.system import traffic_stream
from service.http.deps import Admin, Agent, DaemonDep
from service.http.errors import ApiError, error_responses, refuse_nul
from service.runtime.daemon import Daemon
from service.store.eventlog import EventIdConflict, MissingReference, NewEvent, Reference

# Every type the log can hold: agent traffic, promptd's own decisions, and the legacy
# approval.granted that deployment folds still read.
KNOWN_TYPES = frozenset({"execution", "correction", *system.EVENT_MODELS, *DEPLOYMENT_FOLDS})

router = APIRouter(prefix="/v1", tags=["events"], responses=error_responses(401, 413, 422))
_INGEST_ERRORS = error_responses(400, 409, 503)

# Set by RequestGuard for each ingest request: tells the writer whether its client has gone
# (then the append is dropped rather than committed for nobody). None: unknown.
client_gone: ContextVar[Callable[[], bool] | None] = ContextVar("client_gone", default=None)


def _field(prefix: str, index: int, name: str) -> str:
    return f"{prefix}[{index}].{name}" if prefix else name


def _epoch(moment: datetime) -> float:
    # A time without a zone is taken as UTC, as the SDK sends it.
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


def _refuse(daemon: Daemon, events: Sequence[ExecutionIn | CorrectionIn], status: int,
            code: str, problems: list[dict[str, Any]]) -> ApiError:
    for e in events:
        daemon.metrics.events_ingested.labels(e.type, "rejected").inc()
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
    what = "conflict" if status == 409 else "invalid request"
    return ApiError(status, code, f"{what}: {summary}", problems)


def _check_against_registry(daemon: Daemon, events: Sequence[ExecutionIn | CorrectionIn],
                            prefix: str) -> None:
    problems: list[dict[str, Any]] = []
    now = daemon.clock()
    oldest, newest = daemon.settings.occurred_window(now)
    for i, e in enumerate(events):
        if e.prompt not in daemon.live.registry.prompts:
            problems.append({"field": _field(prefix, i, "prompt"),
                             "message": f"unknown prompt {e.prompt!r}"})
        elif (e.prompt, e.version) not in daemon.live.registry.versions:
            problems.append({"field": _field(prefix, i, "version"),
                             "message": f"prompt {e.prompt!r} has no version {e.version}"})
        # An event from year 1 or from next year would land in windows nobody looks at (or
        # in every future one); the window is PROMPTD_OCCURRED_AT_MAX_AGE_S / _MAX_AHEAD_S.
        if e.occurred_at is not None and not oldest <= _epoch(e.occurred_at) <= newest:
            problems.append({"field": _field(prefix, i, "occurred_at"), "message": (
                f"must lie within {daemon.settings.occurred_at_max_age_s:g} s before and "
                f"{daemon.settings.occurred_at_max_ahead_s:g} s after the daemon's clock "
                f"({datetime.fromtimestamp(now, UTC).isoformat()})")})
    if problems:
        raise _refuse(daemon, events, 422, "validation_error", problems)


def _log_entry(daemon: Daemon, e: ExecutionIn | CorrectionIn) -> NewEvent:
    entry = daemon.agent_event(e.type, payload_of(e), event_id=e.event_id)
    if isinstance(e, CorrectionIn):
        # A correction is about one execution of the same prompt, already in the log or
        # earlier in the same batch; the writer checks it in the appending transaction.
        entry = dataclasses.replace(entry, requires=Reference(
            e.execution_id, traffic_stream(e.prompt), "execution"))
    return entry


async def _ingest(daemon: Daemon, events: Sequence[ExecutionIn | CorrectionIn], route: str,
                  prefix: str) -> AppendResponse:
    started = time.perf_counter()
    _check_against_registry(daemon, events, prefix)
    batch = [_log_entry(daemon, e) for e in events]
    # Straight to the writer's asyncio future: its event loop is woken once per group commit,
    # not once per request as ``Daemon.append`` (``asyncio.wrap_future``) does.
    try:
        results = await daemon.writer.submit_async(batch, gone=client_gone.get())
    except EventIdConflict as exc:
        raise _refuse(daemon, events, 409, "event_id_conflict", [
            {"field": _field(prefix, exc.index, "event_id"), "message": exc.message}]) from None
    except MissingReference as exc:
        raise _refuse(daemon, events, 422, "validation_error", [
            {"field": _field(prefix, exc.index, "execution_id"), "message": exc.message}]
        ) from None
    # Counted per (type, result) once per request: a labels() lookup per event cost more
    # than the rest of the bookkeeping of a 100-event batch.
    tally: Counter[tuple[str, str]] = Counter(
        (e.type, "duplicate" if r.duplicate else "stored")
        for e, r in zip(events, results, strict=True))
    for (event_type, result), n in tally.items():
        daemon.metrics.events_ingested.labels(event_type, result).inc(n)
    duplicates = sum(n for (_, result), n in tally.items() if result == "duplicate")
    daemon.metrics.ingest_seconds.labels(route).observe(time.perf_counter() - started)
    return AppendResponse(
        results=[AppendedEvent(event_id=r.event_id, position=r.position, duplicate=r.duplicate)
                 for r in results],
        stored=len(results) - duplicates, duplicates=duplicates,
    )


@router.post("/events", response_model=AppendResponse, responses=_INGEST_ERRORS,
             summary="Append a batch of execution and correction events, atomically")
async def post_events(body: EventBatch, daemon: DaemonDep, _: Agent) -> AppendResponse:
    """Store every event of the batch or none of them; duplicates (same event_id) are no-ops."""
    limit = daemon.settings.max_batch_events
    if len(body.events) > limit:
        raise ApiError(413, "batch_too_large",
                       f"events: {len(body.events)} events in one batch, at most {limit}")
    return await _ingest(daemon, body.events, "/v1/events", "events")


@router.post("/executions", response_model=AppendedEvent, responses=_INGEST_ERRORS,
             summary="Append one execution")
async def post_execution(body: ExecutionIn, daemon: DaemonDep, _: Agent) -> AppendedEvent:
    """Store one execution event (idempotent on event_id)."""
    return (await _ingest(daemon, [body], "/v1/executions", "")).results[0]


@router.post("/corrections", response_model=AppendedEvent, responses=_INGEST_ERRORS,
             summary="Append one correction")
async def post_correction(body: CorrectionIn, daemon: DaemonDep, _: Agent) -> AppendedEvent:
    """Store one correction event (idempotent on event_id)."""
    return (await _ingest(daemon, [body], "/v1/corrections", "")).results[0]


@router.get("/events", response_model=EventPage, responses=error_responses(403),
            summary="Tail the event log (admin)")
def get_events(
    daemon: DaemonDep,
    _: Admin,
    # Positions are 64-bit: a larger number overflowed the driver and answered 500.
    after: int = Query(0, ge=0, le=2**63 - 1, description="return events with position > after"),
    limit: int = Query(100, ge=1, le=10_000),
    type: list[str] | None = Query(None, description="only these event types"),
    stream: str | None = Query(None, max_length=200),
    last: int | None = Query(None, ge=1, le=10_000, description=(
        "instead of the events after `after`, the newest `last` events that match")),
) -> dict[str, Any]:
    """Return events after a position (or the newest ones), oldest first, and where to go on."""
    refuse_nul(type=type, stream=stream)
    unknown = sorted(set(type or ()) - KNOWN_TYPES)
    if unknown:
        message = f"unknown event type {', '.join(map(repr, unknown))}"
        raise ApiError(422, "validation_error", f"invalid request: type: {message}; known: "
                       + ", ".join(sorted(KNOWN_TYPES)), [{"field": "type", "message": message}])
    if last is not None:
        batch, head = daemon.queries.last_events(last, types=type, stream=stream)
    else:
        batch, head = daemon.queries.events(after, limit, types=type, stream=stream)
    return {
        "events": [e.to_dict() for e in batch],
        "next_after": batch[-1].position if batch else after,
        "head": head,
    }
