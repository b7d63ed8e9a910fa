"""The report a person takes away: every prompt over a window, from the read models.

Counts come from ``version_hours`` (so the window starts at the hour holding ``since``),
decisions from the timeline, failure patterns from each prompt's latest snapshot. Rates carry
95% Wilson intervals; nothing here reads the clock (``until`` is given).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import Any

from sqlalchemy import Connection, select

from analytics.intervals import wilson_interval
from service.projections.counts import HOUR_S
from service.projections.failures import load_snapshot
from service.projections.rollout import load_row
from service.store.schema import events, labels, prompts, timeline, version_hours

ENDINGS = ("deployment.promoted", "deployment.rolled_back", "deployment.superseded",
           "deployment.rejected")
TOP_PATTERNS = 5
RANKED = 3  # prompts shown at the top and at the bottom


def _rate(k: int, n: int) -> dict[str, Any]:
    k = min(k, n)  # a correction may arrive for an execution counted before the window
    lo, hi = wilson_interval(k, n) if n else (0.0, 1.0)
    return {"rate": k / n if n else None, "ci": [lo, hi]}


def _metrics(c: list[int]) -> dict[str, Any]:
    executions, successes, errors, corrections, latency_us, cost_nano = c
    cost = cost_nano / 1e9
    return {
        "executions": executions, "successes": successes, "errors": errors,
        "corrections": corrections, "success": _rate(successes, executions),
        "correction": _rate(corrections, executions), "error": _rate(errors, executions),
        "cost_usd": cost, "cost_per_success_usd": cost / successes if successes else None,
        "mean_latency_ms": latency_us / 1000 / executions if executions else None,
    }


def _counts(conn: Connection, since: float, prompt: str | None) -> dict[tuple[str, int], list[int]]:
    query = select(version_hours).where(version_hours.c.hour >= int(since // HOUR_S))
    if prompt is not None:
        query = query.where(version_hours.c.prompt == prompt)
    out: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0] * 6)
    for r in conn.execute(query):
        acc = out[(r.prompt, r.version)]
        for i, value in enumerate((r.executions, r.successes, r.errors, r.corrections,
                                   r.latency_us_sum, r.cost_nanousd_sum)):
            acc[i] += value
    return out


def _decisions(conn: Connection, since: float, until: float,
               prompt: str | None) -> dict[str, list[dict[str, Any]]]:
    query = select(timeline).where(timeline.c.recorded_at >= since,
                                   timeline.c.recorded_at <= until).order_by(timeline.c.position)
    if prompt is not None:
        query = query.where(timeline.c.prompt == prompt)
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in conn.execute(query):
        out[r.prompt].append({"position": r.position, "type": r.type, "actor": r.actor,
                              "at": r.recorded_at, **json.loads(r.summary)})
    return out


def _label_kinds(conn: Connection, positions: list[int]) -> dict[int, str]:
    # The timeline keeps no "kind" of a label move; the few moves in a window are read back.
    if not positions:
        return {}
    rows = conn.execute(select(events.c.position, events.c.payload)
                        .where(events.c.position.in_(positions)))
    return {r.position: str(json.loads(r.payload).get("kind", "set")) for r in rows}


def _shipped(conn: Connection, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    moves = [e for e in entries if e["type"] == "label.moved" and e.get("label") == "production"]
    kinds = _label_kinds(conn, [e["position"] for e in moves])
    return [{"at": e["at"], "version": e["version"], "previous": e.get("previous"),
             "kind": kinds.get(e["position"], "set"), "actor": e["actor"],
             "reason": e.get("reason", "")} for e in moves]


def _endings(conn: Connection, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for e in entries:
        if e["type"] not in ENDINGS:
            continue
        row = load_row(conn, e.get("deployment_id", ""))
        versions = ([a.version for a in row.state().candidates] if row is not None else [])
        out.append({"at": e["at"], "deployment_id": e.get("deployment_id"),
                    "outcome": e["type"].removeprefix("deployment."), "versions": versions,
                    "actor": e["actor"], "reason": e.get("reason", "")})
    return out


def _patterns(conn: Connection, prompt: str) -> list[dict[str, Any]]:
    snapshot = load_snapshot(conn, prompt)
    if snapshot is None:
        return []
    return [{"pattern_id": p.pattern_id, "label": p.label, "size": p.size, "share": p.share,
             "severity_score": p.severity_score, "status": p.status,
             "trend_counts": list(p.trend_counts), "versions": list(p.versions)}
            for p in snapshot["patterns"][:TOP_PATTERNS]]


def load_report(conn: Connection, *, since: float, until: float,
                prompt: str | None = None) -> dict[str, Any]:
    """Return the report of every prompt (or one) between ``since`` and ``until``."""
    counts = _counts(conn, since, prompt)
    decided = _decisions(conn, since, until, prompt)
    production = {(r.prompt): r.version for r in conn.execute(
        select(labels).where(labels.c.label == "production"))}
    names = sorted(r.name for r in conn.execute(select(prompts.c.name))
                   if prompt is None or r.name == prompt)
    reports = []
    for name in names:
        versions = sorted(v for p, v in counts if p == name)
        total = [sum(col) for col in zip(*(counts[(name, v)] for v in versions),
                                         strict=True)] or [0] * 6
        entries = decided.get(name, [])
        shipped = _shipped(conn, entries)
        reports.append({
            "prompt": name, "production": production.get(name),
            "production_at_start": shipped[0]["previous"] if shipped else production.get(name),
            "totals": _metrics(total),
            "versions": [{"version": v, "production": v == production.get(name),
                          **_metrics(counts[(name, v)])} for v in versions],
            "shipped": shipped, "deployments_ended": _endings(conn, entries),
            "decisions": dict(sorted(Counter(e["type"] for e in entries).items())),
            "patterns": _patterns(conn, name),
        })
    ranked = sorted((r for r in reports if r["totals"]["executions"]),
                    key=lambda r: (-r["totals"]["success"]["rate"], r["prompt"]))
    ranking = [{"prompt": r["prompt"], "executions": r["totals"]["executions"],
                "success": r["totals"]["success"]} for r in ranked]
    return {
        "since": since, "until": until, "counted_from": int(since // HOUR_S) * HOUR_S,
        "prompt": prompt,
        "totals": {
            "prompts": len(reports),
            "executions": sum(r["totals"]["executions"] for r in reports),
            "corrections": sum(r["totals"]["corrections"] for r in reports),
            "versions_shipped": sum(len(r["shipped"]) for r in reports),
            "promotions": sum(r["decisions"].get("deployment.promoted", 0) for r in reports),
            "rollbacks": sum(r["decisions"].get("deployment.rolled_back", 0) for r in reports),
        },
        "top": ranking[:RANKED], "bottom": ranking[::-1][:RANKED],
        "prompts": reports,
    }
