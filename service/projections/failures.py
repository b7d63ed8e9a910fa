"""Read models for mining: failure records and the latest pattern snapshot per prompt."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, select

from analytics.mining import WindowCounts
from analytics.mining.model import FailureRecord, Pattern
from service.contract import SEVERITY_WEIGHT
from service.projections.counts import execution_succeeded
from service.projections.projector import insert_many, upsert
from service.store import eventlog
from service.store.eventlog import StoredEvent, encode_payload
from service.store.schema import (
    RECORDED_VARIABLES_KEPT,
    activity,
    failure_records,
    pattern_snapshots,
    recorded_variables,
)

MAX_STORED_TEXT = 4_000  # mining truncates further; this only bounds the read model


def _clip(text: str | None) -> str | None:
    return text[:MAX_STORED_TEXT] if text else text


def _scalar_variables(variables: Any) -> str | None:
    """Return an execution's scalar input variables as sorted JSON pairs (None if none)."""
    if not isinstance(variables, dict):
        return None
    pairs = sorted((str(k), str(v)[:200]) for k, v in variables.items()
                   if isinstance(v, str | int | float | bool))
    return json.dumps(pairs, separators=(",", ":")) if pairs else None


class FailureProjection:
    """Every correction and failed execution, with the fields mining needs."""

    name = "failures"
    types = frozenset({"execution", "correction"})
    tables = (failure_records,)

    def apply(self, conn: Connection, batch: Sequence[StoredEvent]) -> None:
        rows: list[dict[str, Any]] = []
        executions = eventlog.find_many_before(conn, [
            (e.payload["execution_id"], e.position) for e in batch if e.type == "correction"])
        for e in batch:
            p = e.payload
            if e.type == "execution":
                if execution_succeeded(p) and not p.get("error_type"):
                    continue
                rows.append({
                    "position": e.position, "prompt": p["prompt"], "kind": "failure",
                    "record_id": e.event_id, "version": p["version"],
                    "recorded_at": e.recorded_at,
                    "reason": p.get("error_type") or "unsuccessful execution",
                    "category": None, "error_type": p.get("error_type"), "severity": 1.0,
                    "input_text": _clip(p.get("input_text")),
                    "output_text": _clip(p.get("output_text")), "corrected_output": None,
                    "variables": _scalar_variables(p.get("variables")),
                })
            else:
                execution = executions.get((p["execution_id"], e.position))
                ex = execution.payload if execution is not None else {}
                rows.append({
                    "position": e.position, "prompt": p["prompt"], "kind": "correction",
                    "record_id": e.event_id, "version": p["version"],
                    "recorded_at": e.recorded_at, "reason": p.get("reason", ""),
                    "category": p.get("category"), "error_type": ex.get("error_type"),
                    "severity": SEVERITY_WEIGHT.get(p.get("severity", "medium"), 2.0),
                    "input_text": _clip(ex.get("input_text")),
                    "output_text": _clip(p.get("original_output") or ex.get("output_text")),
                    "corrected_output": _clip(p.get("corrected_output")),
                    "variables": _scalar_variables(ex.get("variables")),
                })
        insert_many(conn, failure_records, rows)


class ActivityProjection:
    """Executions, failures and corrections per prompt per minute."""

    name = "activity"
    types = frozenset({"execution", "correction"})
    tables = (activity,)

    def apply(self, conn: Connection, batch: Sequence[StoredEvent]) -> None:
        acc: dict[tuple[str, int], list[int]] = {}
        for e in batch:
            counts = acc.setdefault((e.payload["prompt"], int(e.recorded_at // 60)), [0, 0, 0])
            if e.type == "execution":
                counts[0] += 1
                failed = not execution_succeeded(e.payload) or bool(e.payload.get("error_type"))
                counts[1] += failed
            else:
                counts[2] += 1
        for (prompt, minute), (ex, fa, co) in sorted(acc.items()):
            key = (activity.c.prompt == prompt, activity.c.minute == minute)
            row = conn.execute(select(activity).where(*key)).first()
            if row is None:
                conn.execute(activity.insert().values(prompt=prompt, minute=minute,
                                                      executions=ex, failures=fa,
                                                      corrections=co))
            else:
                conn.execute(activity.update().where(*key).values(
                    executions=row.executions + ex, failures=row.failures + fa,
                    corrections=row.corrections + co))


def load_windows(conn: Connection, prompt: str, *, now: float, window_s: float,
                 n_windows: int) -> list[WindowCounts]:
    """Return activity of a prompt in ``n_windows`` windows ending at ``now``, oldest first."""
    start = now - window_s * n_windows
    out = [WindowCounts(start + i * window_s, 0, 0, 0) for i in range(n_windows)]
    rows = conn.execute(select(activity).where(
        activity.c.prompt == prompt, activity.c.minute >= int(start // 60)))
    for r in rows:
        i = int((r.minute * 60 - start) // window_s)
        if 0 <= i < n_windows:
            w = out[i]
            out[i] = WindowCounts(w.window_start, w.executions + r.executions,
                                  w.failures + r.failures, w.corrections + r.corrections)
    return out


class RecordedVariablesProjection:
    """The newest variable sets each prompt was rendered with (a bounded window)."""

    name = "recorded_variables"
    types = frozenset({"execution"})
    tables = (recorded_variables,)

    def apply(self, conn: Connection, batch: Sequence[StoredEvent]) -> None:
        # Only the newest RECORDED_VARIABLES_KEPT of a batch can survive it: older ones are
        # never written (a replay chunk of 5,000 executions writes 20 rows, not 5,000), and
        # the table ends the same whatever the batch boundaries were.
        newest: dict[str, list[StoredEvent]] = {}
        for e in reversed(batch):
            if e.payload.get("variables"):
                kept = newest.setdefault(e.payload["prompt"], [])
                if len(kept) < RECORDED_VARIABLES_KEPT:
                    kept.append(e)
        rows = [{"position": e.position, "prompt": prompt,
                 "variables": encode_payload(e.payload["variables"])}
                for prompt, kept in newest.items() for e in reversed(kept)]
        if rows:
            conn.execute(recorded_variables.insert(), sorted(rows, key=_by_position))
        for prompt in sorted(newest):
            keep = select(recorded_variables.c.position).where(
                recorded_variables.c.prompt == prompt
            ).order_by(recorded_variables.c.position.desc()).limit(RECORDED_VARIABLES_KEPT)
            conn.execute(recorded_variables.delete().where(
                recorded_variables.c.prompt == prompt,
                recorded_variables.c.position.not_in(keep.scalar_subquery())))


def _by_position(row: dict[str, Any]) -> int:
    return int(row["position"])


def load_recorded_variables(conn: Connection, prompt: str) -> list[dict[str, Any]]:
    """Return the newest recorded variable sets of a prompt."""
    rows = conn.execute(select(recorded_variables.c.variables)
                        .where(recorded_variables.c.prompt == prompt)
                        .order_by(recorded_variables.c.position.desc()))
    return [json.loads(r.variables) for r in rows]


class PatternProjection:
    """The latest ``patterns.mined`` snapshot of each prompt."""

    name = "patterns"
    types = frozenset({"patterns.mined"})
    tables = (pattern_snapshots,)

    def apply(self, conn: Connection, batch: Sequence[StoredEvent]) -> None:
        for e in batch:
            p = e.payload
            upsert(conn, pattern_snapshots, {"prompt": p["prompt"]}, {
                "position": e.position, "mined_at": e.recorded_at,
                "upto_position": p["upto_position"],
                "snapshot": encode_payload({k: p.get(k) for k in
                                            ("patterns", "resolved", "anomalies",
                                             "share_window", "counted_failures")}),
            })


def load_failures(conn: Connection, prompt: str, since: float) -> list[FailureRecord]:
    """Return a prompt's failure records recorded at or after ``since``, oldest first."""
    rows = conn.execute(
        select(failure_records)
        .where(failure_records.c.prompt == prompt, failure_records.c.recorded_at >= since)
        .order_by(failure_records.c.position)
    )
    return [_record(r) for r in rows]


def _record(r: Any) -> FailureRecord:
    return FailureRecord(
        record_id=r.record_id, kind=r.kind, occurred_at=r.recorded_at, version=r.version,
        reason=r.reason or "", category=r.category, error_type=r.error_type,
        severity=r.severity, input_text=r.input_text, output_text=r.output_text,
        corrected_output=r.corrected_output,
        variables=tuple((k, v) for k, v in json.loads(r.variables)) if r.variables else (),
    )


def load_corrected(conn: Connection, prompt: str, limit: int) -> list[FailureRecord]:
    """Return a prompt's newest corrections that carry a corrected output, newest first."""
    rows = conn.execute(
        select(failure_records)
        .where(failure_records.c.prompt == prompt, failure_records.c.kind == "correction",
               failure_records.c.corrected_output.is_not(None))
        .order_by(failure_records.c.position.desc()).limit(limit))
    return [_record(r) for r in rows]


def latest_failure_position(conn: Connection, prompt: str) -> int:
    """Return the position of the prompt's newest failure record (0 if none)."""
    row = conn.execute(
        select(failure_records.c.position).where(failure_records.c.prompt == prompt)
        .order_by(failure_records.c.position.desc()).limit(1)
    ).first()
    return int(row[0]) if row else 0


def load_snapshot(conn: Connection, prompt: str) -> dict[str, Any] | None:
    """Return the prompt's latest snapshot (patterns as ``Pattern``), or None."""
    row = conn.execute(select(pattern_snapshots)
                       .where(pattern_snapshots.c.prompt == prompt)).first()
    if row is None:
        return None
    data = json.loads(row.snapshot)
    return {
        "prompt": prompt, "position": row.position, "mined_at": row.mined_at,
        "upto_position": row.upto_position,
        "patterns": [Pattern.from_dict(d) for d in data["patterns"]],
        "resolved": [Pattern.from_dict(d) for d in data["resolved"]],
        "anomalies": data["anomalies"],
        "share_window": data.get("share_window"),
        "counted_failures": data.get("counted_failures") or 0,
    }
