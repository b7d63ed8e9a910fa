"""Readers for the files in ops/: dashboard queries, alert expressions, the metrics catalogue."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tests.support import REPO

OPS = REPO / "ops"
DASHBOARD = OPS / "grafana" / "dashboards" / "promptd.json"
RULES = OPS / "prometheus" / "rules" / "promptd-alerts.yml"
RULE_TESTS = OPS / "prometheus" / "tests" / "promptd-alerts.test.yml"
PROMETHEUS_CONFIG = OPS / "prometheus" / "prometheus.yml"
METRICS_MD = OPS / "METRICS.md"
README = OPS / "README.md"
SYSTEMD_UNIT = OPS / "systemd" / "promptd.service"
PROVISIONING = OPS / "grafana" / "provisioning"

_METRIC = re.compile(r"(?<![\w:])(promptd_[a-z0-9_]+|up)(?![\w:])")
_HISTOGRAM_PARTS = ("_bucket", "_sum", "_count")


@dataclass(frozen=True)
class Query:
    """One PromQL expression the dashboard or the alert rules run, and who runs it."""

    user: str  # 'panel "Title"', 'annotation "Name"' or 'alert Name'
    expr: str


def load_dashboard() -> dict[str, Any]:
    """Return the dashboard JSON as a dict."""
    return dict(json.loads(DASHBOARD.read_text()))


def dashboard_queries(dashboard: dict[str, Any] | None = None) -> list[Query]:
    """Return every panel target and annotation expression of the dashboard."""
    board = dashboard if dashboard is not None else load_dashboard()
    out = [Query(f'panel "{p["title"]}"', t["expr"])
           for p in board["panels"] if p["type"] != "row" for t in p["targets"]]
    out += [Query(f'annotation "{a["name"]}"', a["expr"])
            for a in board["annotations"]["list"] if "expr" in a]
    return out


def alert_queries(text: str | None = None) -> list[Query]:
    """Return each alert's name and expression from the rules file (its own simple layout)."""
    rules = text if text is not None else RULES.read_text()
    out: list[Query] = []
    for chunk in re.split(r"\n\s*- alert: ", rules)[1:]:
        name, body = chunk.split("\n", 1)
        lines = body.splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("expr:"))
        first = lines[start].split("expr:", 1)[1].strip()
        if first not in ("|", ">", "|-", ">-"):
            out.append(Query(f"alert {name.strip()}", first))
            continue
        indent = len(lines[start]) - len(lines[start].lstrip())
        block: list[str] = []
        for line in lines[start + 1:]:
            if line.strip() and len(line) - len(line.lstrip()) <= indent:
                break
            if not line.strip().startswith("#"):
                block.append(line.strip())
        out.append(Query(f"alert {name.strip()}", " ".join(b for b in block if b)))
    return out


def metric_names(expr: str) -> set[str]:
    """Return the metric families an expression reads (histogram parts folded to the family)."""
    names = set()
    for name in _METRIC.findall(expr):
        for part in _HISTOGRAM_PARTS:
            if name.endswith(part):
                name = name[: -len(part)]
                break
        names.add(name)
    return names


@dataclass(frozen=True)
class CatalogueEntry:
    """One row of the metric table in ops/METRICS.md."""

    name: str
    type: str
    labels: tuple[str, ...]
    used_by: frozenset[str]


def catalogue() -> dict[str, CatalogueEntry]:
    """Return the rows of the "Metric families" table in ops/METRICS.md by metric name."""
    text = METRICS_MD.read_text()
    section = text.split("## Metric families", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, CatalogueEntry] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[0].startswith("`promptd_"):
            continue
        name = cells[0].strip("`")
        labels = tuple(re.findall(r"`([a-z_]+)`", cells[2]))
        used = frozenset(u.strip() for u in cells[4].split(";") if u.strip() not in ("", "—"))
        rows[name] = CatalogueEntry(name, cells[1], labels, used)
    return rows


def exposed_families(exposition: str) -> dict[str, str]:
    """Return metric family name -> type from the ``# TYPE`` lines of /metrics output."""
    families = {}
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            families[name] = kind
    return families


def created_base(name: str, families: dict[str, str]) -> str | None:
    """Return the counter or histogram a ``_created`` family accompanies, if any."""
    if not name.endswith("_created"):
        return None
    stem = name[: -len("_created")]
    for candidate in (f"{stem}_total", stem):
        if families.get(candidate) in ("counter", "histogram"):
            return candidate
    return None

