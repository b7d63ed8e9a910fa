"""The canary's evidence in a terminal: bounds over ticks against the boundaries, and the plan.

Drawn from the log's ``canary.analysed`` records (one per tick that saw new data), so the
chart of an ended deployment still shows how it got there. Plain ASCII, at most 80 columns.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from typing import Any

WIDTH = 56  # tick columns; with the axis labels and the boundary names, <= 80 in all
HEIGHT = 13
UPPER, LOWER, ESTIMATE, HARM, PROMOTION = "^", "v", "o", "-", "="
LEGEND = (f"{UPPER} upper bound  {ESTIMATE} estimate  {LOWER} lower bound  "
          f"{HARM * 3} harm and {PROMOTION * 3} promotion boundary\n"
          "(a bound beyond the scale sits at its top or bottom row)")
# Rates read in percentage points; other metrics (mean score, log-latency, cost) as deltas.
_RATES = frozenset({"success_rate", "correction_rate", "error_rate"})


def _scale(metric: str) -> tuple[float, str]:
    return (100.0, " pt") if metric in _RATES else (1.0, "")


def _fmt(value: float, metric: str) -> str:
    factor, unit = _scale(metric)
    value = value * factor + 0.0  # no "-0.0"
    return f"{value:+.1f}{unit}" if unit else f"{value:+.3g}"


def _sampled(records: Sequence[dict[str, Any]], width: int) -> list[dict[str, Any]]:
    # More ticks than columns: evenly spaced ones, always the first and the last.
    if len(records) <= width:
        return list(records)
    step = (len(records) - 1) / (width - 1)
    return [records[round(i * step)] for i in range(width)]


def chart(records: Sequence[dict[str, Any]], arm: str, metric: str) -> str:
    """Return the ASCII chart of ``arm`` minus control on ``metric`` over the records' ticks.

    Each column is one tick (evenly sampled when there are more than fit); the harm and
    promotion boundaries are horizontal lines, named at the right.
    """
    points = [(r, r["effects"][arm][metric]) for r in _sampled(
        [r for r in records if metric in r.get("effects", {}).get(arm, {})], WIDTH)]
    if not points:
        return f"{arm} - control on {metric}: no tick recorded yet"
    bounds = records[-1].get("boundaries", {}).get(metric, {})
    # The scale fits the boundaries and every estimate, and stretches toward the newest
    # bounds by at most twice that span: early bounds (and the promotion bound, tuned for the
    # planned horizon) can be far wider than the question, so beyond it they sit at the edge.
    latest = points[-1][1]
    core = [v for v in (*(e.get("estimate") for _, e in points), *bounds.values())
            if v is not None and math.isfinite(v)]
    low, high = min(core), max(core)
    reach = 2 * max(high - low, 0.02)
    ends = [v for v in (latest.get("lower"), latest.get("upper"))
            if v is not None and math.isfinite(v)]
    top = min(max([high, *ends]), high + reach)
    bottom = max(min([low, *ends]), low - reach)
    pad = (top - bottom) * 0.05
    top, bottom = top + pad, bottom - pad

    def row(value: float) -> int:
        at = round((top - value) / (top - bottom) * (HEIGHT - 1))
        return min(max(at, 0), HEIGHT - 1)

    grid = [[" "] * len(points) for _ in range(HEIGHT)]
    names: dict[int, list[str]] = {}
    for kind, mark in (("promotion", PROMOTION), ("harm", HARM)):  # harm drawn over it
        if kind in bounds:
            r = row(bounds[kind])
            grid[r] = [mark] * len(points)
            names.setdefault(r, []).insert(0, f"{kind} {_fmt(bounds[kind], metric)}")
    for x, (_, e) in enumerate(points):
        for key, mark in (("estimate", ESTIMATE), ("lower", LOWER), ("upper", UPPER)):
            v = e.get(key)
            if v is not None and math.isfinite(v):
                grid[row(v)][x] = mark
    labelled = {0, HEIGHT - 1}  # boundary rows are named at the right instead
    lines = [f"{arm} - control on {metric}: {len(points)} of {len(records)} ticks, "
             f"n {_n(latest)} (arm/control)"]
    for r, cells in enumerate(grid):
        value = top - r * (top - bottom) / (HEIGHT - 1)
        label = _fmt(value, metric) if r in labelled else ""
        lines.append(f"{label:>9} |{''.join(cells)}  {', '.join(names.get(r, []))}".rstrip())
    lines.append(f"{'':>9} +{'-' * len(points)}")
    lines.append(f"{'step':>9}  {_steps(points)}".rstrip())
    return "\n".join(lines)


def _n(effect: dict[str, Any]) -> str:
    return f"{effect.get('n_candidate', 0)}/{effect.get('n_control', 0)}"


def _steps(points: list[tuple[dict[str, Any], dict[str, Any]]]) -> str:
    # The step (counted from 1) written where it begins; the log counts from 0.
    axis = [" "] * len(points)
    last = None
    for x, (record, _) in enumerate(points):
        step = record.get("step_index", 0) + 1
        if step != last and (x == 0 or axis[x - 1] == " "):
            axis[x] = str(step)[-1]
        last = step
    return "".join(axis)


def latest_lines(record: dict[str, Any], arm: str, skip: str) -> list[str]:
    """Return one line per metric other than ``skip``: the latest estimate, bound and
    harm boundary of ``arm`` minus control."""
    out = []
    for metric, e in record.get("effects", {}).get(arm, {}).items():
        if metric == skip:
            continue
        harm = record.get("boundaries", {}).get(metric, {}).get("harm")
        bound = e.get("lower") if e.get("lower") is not None else e.get("upper")
        parts = [f"estimate {_fmt(e['estimate'], metric)}" if e.get("estimate") is not None
                 else "no estimate yet",
                 f"bound {_fmt(bound, metric)}" if bound is not None else "no bound yet",
                 f"harm at {_fmt(harm, metric)}" if harm is not None else ""]
        out.append(f"  {metric:<16} " + ", ".join(p for p in parts if p))
    return out


def plan_lines(plan: dict[str, Any]) -> list[str]:
    """Return the policy's plan (horizon, cap, tuning, alpha split, SRM unit), readably."""
    planned = plan.get("planned_samples_per_arm")
    horizon = f"{planned:,} samples per arm" if planned else "not planned (no margin)"
    alpha = plan.get("alpha", {})

    def split(key: str) -> str:
        shares = alpha.get(key, {})
        return " | ".join(f"{shares[k]:.3g}" if shares.get(k) else "-" for k in ("1", "3"))

    sentences = [
        f"plan: horizon {horizon}; inconclusive at {plan['max_samples_per_arm']:,} per arm.",
        f"Bounds tuned at {plan['harm_tuning']:,.0f} observations (harm) and "
        f"{plan['promotion_tuning']:,.0f} (promotion).",
        f"Alpha with 1 | 3 candidates: harm {split('harm_per_arm')} per arm, promotion "
        f"{split('promotion_per_arm')} per arm, selection {split('selection_per_pair')} "
        "per pair.",
        f"The sample-ratio check counts {plan['srm_unit']}.",
    ]
    return [line for i, s in enumerate(sentences)
            for line in textwrap.wrap(s, 80, initial_indent="" if i == 0 else "  ",
                                      subsequent_indent="  ")]
