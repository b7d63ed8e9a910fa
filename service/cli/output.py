"""How CLI commands print: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from typing import Any


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Return rows as an aligned plain-text table."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def emit(args: argparse.Namespace, data: Any, human: Callable[[Any], str]) -> None:
    """Print ``data`` as JSON with --json, else in its human form."""
    print(json.dumps(data, indent=2, sort_keys=True) if args.json else human(data))


def ts(value: float | None) -> str:
    """Return a UTC timestamp as text, or "-"."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value)) if value else "-"


def pct(value: float | None) -> str:
    """Return a fraction as a percentage, or "-"."""
    return "-" if value is None else f"{value:.1%}"
