"""``promptd report``: what every prompt did over a window, as Markdown, CSV or JSON."""

from __future__ import annotations

import argparse
import csv
import io
import json
from typing import Any

from service.cli.base import AddCommand, client
from service.cli.output import ts

CSV_COLUMNS = ("prompt", "version", "production", "executions", "successes", "success_rate",
               "success_low", "success_high", "corrections", "correction_rate",
               "correction_low", "correction_high", "errors", "error_rate", "error_low",
               "error_high", "cost_usd", "cost_per_success_usd", "mean_latency_ms")


def _pct(rate: dict[str, Any]) -> str:
    if rate["rate"] is None:
        return "-"
    lo, hi = rate["ci"]
    return f"{rate['rate']:.1%} [{lo:.1%}, {hi:.1%}]"


def _usd(value: float | None) -> str:
    return "-" if value is None else f"${value:.6f}".rstrip("0").rstrip(".")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _who(entry: dict[str, Any]) -> str:
    return str(entry.get("actor_name") or entry["actor"])


def _row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    return [_row(headers), _row(["---"] * len(headers)), *(_row(r) for r in rows)]


def _ranking(title: str, entries: list[dict[str, Any]]) -> list[str]:
    rows = [[i + 1, f"`{e['prompt']}`", e["executions"], _pct(e["success"])]
            for i, e in enumerate(entries)]
    return [f"## {title}", "", *_table(["#", "prompt", "executions", "success (95% CI)"], rows),
            ""]


def _prompt_md(p: dict[str, Any]) -> list[str]:
    start, now = p["production_at_start"], p["production"]
    moved = f"v{start} -> v{now}" if start != now else f"v{now} throughout"
    out = [f"## `{p['prompt']}`", "", f"Production: {moved}.", ""]
    rows = [[f"v{v['version']}" + (" (production)" if v["production"] else ""),
             v["executions"], _pct(v["success"]), _pct(v["correction"]), _pct(v["error"]),
             _usd(v["cost_per_success_usd"]), _ms(v["mean_latency_ms"])]
            for v in p["versions"]]
    if rows:
        out += _table(["version", "executions", "success (95% CI)", "corrections per execution",
                       "errors", "cost per success", "mean latency"], rows)
    else:
        out.append("No executions in the window.")
    out += ["", "### Shipped", ""]
    out += [f"- {ts(s['at'])} v{s['version']} to production ({s['kind']}, by {_who(s)})"
            + (f": {s['reason']}" if s["reason"] else "") for s in p["shipped"]] or ["- nothing"]
    out += ["", "### Decided", ""]
    if p["decisions"]:
        out.append("- " + ", ".join(f"{t} x{n}" for t, n in p["decisions"].items()))
    out += [f"- {ts(d['at'])} {d['outcome']} "
            f"{', '.join(f'v{v}' for v in d['versions'])} ({d['deployment_id']}, by "
            f"{_who(d)}): {d['reason']}" for d in p["deployments_ended"]]
    if not p["decisions"]:
        out.append("- nothing")
    out += ["", "### Top failure patterns", ""]
    rows = [[pt["label"], pt["size"], f"{pt['share']:.1%}", f"{pt['severity_score']:.0f}",
             f"{pt['status']} ({' '.join(map(str, pt['trend_counts']))})"]
            for pt in p["patterns"]]
    out += (_table(["pattern", "records", "share", "severity", "trend (per window)"], rows)
            if rows else ["None mined."])
    return [*out, ""]


def markdown(d: dict[str, Any]) -> str:
    """Return the report as Markdown (also readable as plain text)."""
    t = d["totals"]
    out = [f"# promptd report: {ts(d['since'])} to {ts(d['until'])} UTC", "",
           f"Counts from {ts(d['counted_from'])} (whole hours). Prompts: {t['prompts']}; "
           f"executions: {t['executions']:,}; corrections: {t['corrections']:,}; production "
           f"moves: {t['versions_shipped']}; promotions: {t['promotions']}; rollbacks: "
           f"{t['rollbacks']}. Rates carry 95% Wilson intervals.", ""]
    ranked = {e["prompt"] for e in d["top"] + d["bottom"]}
    if len(ranked) < len(d["top"]) + len(d["bottom"]):  # few prompts: one table says it all
        out += _ranking("Prompts by success rate", d["top"] + [
            e for e in reversed(d["bottom"]) if e not in d["top"]])
    else:
        out += _ranking("Best success rates", d["top"])
        out += _ranking("Worst success rates", d["bottom"])
    for p in d["prompts"]:
        out += _prompt_md(p)
    return "\n".join(out).rstrip("\n")


def csv_text(d: dict[str, Any]) -> str:
    """Return one CSV row per prompt version with its rates, intervals and cost."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for p in d["prompts"]:
        for v in p["versions"]:
            cells: list[Any] = [p["prompt"], v["version"], v["production"], v["executions"],
                                v["successes"]]
            for metric, count in (("success", None), ("correction", "corrections"),
                                  ("error", "errors")):
                if count:
                    cells.append(v[count])
                cells += [v[metric]["rate"], *v[metric]["ci"]]
            cells += [v["cost_usd"], v["cost_per_success_usd"], v["mean_latency_ms"]]
            writer.writerow(["" if c is None else c for c in cells])
    return buffer.getvalue().rstrip("\n")


def cmd_report(args: argparse.Namespace) -> int:
    """Print what every prompt (or NAME) did over the window."""
    params = {"since": args.since}
    if args.name:
        params["prompt"] = args.name
    data = client(args).get("/v1/report", params=params)
    fmt = "json" if args.json else args.format
    print(json.dumps(data, indent=2, sort_keys=True) if fmt == "json"
          else csv_text(data) if fmt == "csv" else markdown(data))
    return 0


def register(sub: Any, add: AddCommand) -> None:
    """Add report."""
    p = add("report", cmd_report, "what every prompt did over a window, to take away")
    p.add_argument("name", nargs="?", help="only this prompt")
    p.add_argument("--since", default="7d", help="how far back: 7d, 12h, 30m (default 7d)")
    p.add_argument("--format", choices=["md", "csv", "json"], default="md",
                   help="md: Markdown for people (default); csv: one row per version; json")
