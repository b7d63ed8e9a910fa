"""Per-version execution and correction counts, in integer units so any batching adds up."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Float, bindparam, func, update

from service.store import eventlog
from service.store.eventlog import StoredEvent
from service.store.schema import version_counts, version_hours


@dataclass
class _Counts:
    executions: int = 0
    successes: int = 0
    failures: int = 0
    errors: int = 0
    corrections: int = 0
    latency_us_sum: int = 0
    cost_nanousd_sum: int = 0
    last_execution_at: float | None = None


class VersionCountsProjection:
    """Per prompt version: executions, successes, failures, errors, corrections, sums."""

    name = "version_counts"
    types = frozenset({"execution", "correction"})
    tables = (version_counts,)

    def apply(self, conn: Connection, batch: Sequence[StoredEvent]) -> None:
        # Aggregate the batch first: one statement per version instead of one per event.
        acc: dict[tuple[str, int], _Counts] = defaultdict(_Counts)
        for e in batch:
            p = e.payload
            c = acc[(p["prompt"], p["version"])]
            if e.type == "execution":
                c.executions += 1
                if execution_succeeded(p):
                    c.successes += 1
                else:
                    c.failures += 1
                if p.get("error_type"):
                    c.errors += 1
                c.latency_us_sum += round((p.get("latency_ms") or 0.0) * 1000)
                c.cost_nanousd_sum += round((p.get("cost_usd") or 0.0) * 1e9)
                c.last_execution_at = e.recorded_at
            else:
                c.corrections += 1
        for (prompt, version), c in sorted(acc.items()):
            # Increments in place: one statement per version; integer sums stay associative.
            params = {"p_prompt": prompt, "p_version": version, "d_executions": c.executions,
                      "d_successes": c.successes, "d_failures": c.failures,
                      "d_errors": c.errors, "d_corrections": c.corrections,
                      "d_latency_us_sum": c.latency_us_sum,
                      "d_cost_nanousd_sum": c.cost_nanousd_sum,
                      "d_last_execution_at": c.last_execution_at}
            driver = eventlog.sqlite_driver(conn)
            if driver is not None:
                updated = driver.execute(_SQLITE_ADD_COUNTS, (
                    c.executions, c.successes, c.failures, c.errors, c.corrections,
                    c.latency_us_sum, c.cost_nanousd_sum, c.last_execution_at, prompt, version,
                )).rowcount
            else:
                updated = conn.execute(_ADD_COUNTS, params).rowcount
            if updated == 0:
                conn.execute(version_counts.insert().values(
                    prompt=prompt, version=version, executions=c.executions,
                    successes=c.successes, failures=c.failures, errors=c.errors,
                    corrections=c.corrections, latency_us_sum=c.latency_us_sum,
                    cost_nanousd_sum=c.cost_nanousd_sum, last_execution_at=c.last_execution_at,
                ))


_COUNTED = ("executions", "successes", "failures", "errors", "corrections", "latency_us_sum",
            "cost_nanousd_sum")
_SQLITE_ADD_COUNTS = (
    "UPDATE version_counts SET " + ", ".join(f"{name} = {name} + ?" for name in _COUNTED)
    + ", last_execution_at = coalesce(?, last_execution_at) WHERE prompt = ? AND version = ?"
)
_ADD_COUNTS = update(version_counts).where(
    version_counts.c.prompt == bindparam("p_prompt"),
    version_counts.c.version == bindparam("p_version"),
).values(
    **{name: version_counts.c[name] + bindparam(f"d_{name}") for name in _COUNTED},
    last_execution_at=func.coalesce(bindparam("d_last_execution_at", type_=Float),
                                    version_counts.c.last_execution_at),
)


def execution_succeeded(payload: dict[str, Any]) -> bool:
    """Return whether an execution counts as a success (explicit flag, else score >= 0.5)."""
    success = payload.get("success")
    if success is not None:
        return bool(success)
    score = payload.get("score")
    return score is not None and score >= 0.5


HOUR_S = 3600


class VersionHoursProjection:
    """Per prompt version and hour: executions, successes, errors, corrections and sums.

    The time-windowed counterpart of ``version_counts``: a report over the last week sums
    its hours instead of reading the week's events.
    """

    name = "version_hours"
    types = frozenset({"execution", "correction"})
    tables = (version_hours,)

    def apply(self, conn: Connection, batch: Sequence[StoredEvent]) -> None:
        acc: dict[tuple[str, int, int], list[int]] = defaultdict(lambda: [0] * 6)
        for e in batch:
            p = e.payload
            c = acc[(p["prompt"], p["version"], int(e.recorded_at // HOUR_S))]
            if e.type == "execution":
                c[0] += 1
                c[1] += execution_succeeded(p)
                c[2] += bool(p.get("error_type"))
                c[4] += round((p.get("latency_ms") or 0.0) * 1000)
                c[5] += round((p.get("cost_usd") or 0.0) * 1e9)
            else:
                c[3] += 1
        for (prompt, version, hour), c in sorted(acc.items()):
            key = (version_hours.c.prompt == prompt, version_hours.c.version == version,
                   version_hours.c.hour == hour)
            added = dict(zip(_HOURLY, c, strict=True))
            updated = conn.execute(update(version_hours).where(*key).values(
                **{name: version_hours.c[name] + n for name, n in added.items()})).rowcount
            if updated == 0:
                conn.execute(version_hours.insert().values(prompt=prompt, version=version,
                                                           hour=hour, **added))


_HOURLY = ("executions", "successes", "errors", "corrections", "latency_us_sum",
           "cost_nanousd_sum")
