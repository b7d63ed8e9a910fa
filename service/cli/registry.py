"""Commands on prompts, versions, the event log and tokens."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from service.cli.base import AddCommand, add_content_arguments, client, read_content
from service.cli.output import emit, table, ts


def cmd_status(args: argparse.Namespace) -> int:
    """Show the daemon's status."""
    data = client(args).get("/v1/status")
    emit(args, data, lambda d: "\n".join(f"{k:<20} {v}" for k, v in d.items()))
    return 0


def cmd_prompts_list(args: argparse.Namespace) -> int:
    """List prompts."""
    data = client(args).get("/v1/prompts")
    emit(args, data, lambda d: table(
        [(p["name"], p["latest_version"], p["labels"].get("production"), ts(p["created_at"]),
          p["description"][:50]) for p in d["prompts"]],
        ["name", "latest", "production", "created", "description"]))
    return 0


def cmd_prompts_show(args: argparse.Namespace) -> int:
    """Show a prompt with its versions and counts."""
    data = client(args).get(f"/v1/prompts/{args.name}")

    def human(d: dict[str, Any]) -> str:
        head = f"{d['name']}  (production: v{d['labels'].get('production')})\n{d['description']}\n"
        rows = []
        for v in d["versions"]:
            c = v["counts"]
            rate = c.get("success_rate")
            rows.append((f"v{v['version']}", ",".join(v["labels"]), v["strategy"],
                         c.get("executions", 0),
                         f"{rate:.3f}" if rate is not None else "-", c.get("corrections", 0),
                         v["rationale"][:40]))
        return head + table(rows, ["version", "labels", "strategy", "executions", "success",
                                   "corrections", "rationale"])

    emit(args, data, human)
    return 0


def cmd_prompts_create(args: argparse.Namespace) -> int:
    """Create a prompt."""
    body = {"name": args.name, **read_content(args), "description": args.description}
    data = client(args).post("/v1/prompts", body)
    emit(args, data, lambda d: f"created {d['name']} v1 (production)")
    return 0


def cmd_versions_add(args: argparse.Namespace) -> int:
    """Add a version to a prompt."""
    body = {**read_content(args), "rationale": args.rationale,
            "make_production": args.production}
    data = client(args).post(f"/v1/prompts/{args.name}/versions", body)
    emit(args, data, lambda d: f"added {d['prompt']} v{d['version']}"
         + (" and made it production" if args.production else ""))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """Show the unified diff between two versions and the newer one's rationale."""
    data = client(args).get(f"/v1/prompts/{args.name}/diff",
                             params={"from": args.a, "to": args.b})
    emit(args, data, lambda d: (
        f"# v{d['to']} by strategy {d['strategy']}: {d['rationale']}\n"
        + (f"# addresses patterns: {', '.join(d['addressed_patterns'])}\n"
           if d["addressed_patterns"] else "")
        + (d["diff"] or "(no difference)\n")).rstrip("\n"))
    return 0


def cmd_events_tail(args: argparse.Namespace) -> int:
    """Print events from the log; with --follow keep printing new ones."""
    api = client(args)
    after = args.after
    while True:
        params: dict[str, Any] = {"limit": args.limit}
        if after is None:
            params["last"] = args.limit  # the newest events of these types, filtered there
        else:
            params["after"] = after
        if args.type:
            params["type"] = args.type
        data = api.get("/v1/events", params=params)
        for e in data["events"]:
            if args.json:
                print(json.dumps(e, sort_keys=True))
            else:
                summary = json.dumps(e["payload"], sort_keys=True)
                print(f"{e['position']:>8}  {ts(e['recorded_at'])}  {e['type']:<22} "
                      f"{e['stream']:<32} {summary[:100]}")
        if data["events"]:
            after = data["events"][-1]["position"]
        elif after is None:
            after = data["head"]  # nothing matched yet: follow from the head on
        if not args.follow:
            return 0
        sys.stdout.flush()
        if not data["events"]:
            time.sleep(args.interval)


def cmd_token_issue(args: argparse.Namespace) -> int:
    """Issue a token; it is printed once and never again."""
    data = client(args).post("/v1/tokens", {"role": args.role, "name": args.name})
    emit(args, data, lambda d: f"{d['token']}\n(token {d['token_id']}, role {d['role']}; "
         "store it now: promptd keeps only its hash)")
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    """List tokens."""
    data = client(args).get("/v1/tokens")
    emit(args, data, lambda d: table(
        [(t["token_id"], t["role"], t["name"], "revoked" if t["revoked"] else "active")
         for t in d["tokens"]], ["id", "role", "name", "state"]))
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    """Revoke a token."""
    data = client(args).request("DELETE", f"/v1/tokens/{args.token_id}")
    emit(args, data, lambda d: f"revoked {d['token_id']}")
    return 0


def register(sub: Any, add: AddCommand) -> None:
    """Add status, prompts, versions, diff, events and token."""
    add("status", cmd_status, "show the daemon's status")

    prompts = sub.add_parser("prompts", help="list, show or create prompts").add_subparsers(
        dest="sub", required=True, metavar="SUBCOMMAND")
    add("list", cmd_prompts_list, "list prompts", prompts)
    p = add("show", cmd_prompts_show, "show a prompt, its versions and counts", prompts)
    p.add_argument("name")
    p = add("create", cmd_prompts_create, "create a prompt with its first version", prompts)
    p.add_argument("name")
    add_content_arguments(p)
    p.add_argument("--description", default="")

    versions = sub.add_parser("versions", help="add versions").add_subparsers(
        dest="sub", required=True, metavar="SUBCOMMAND")
    p = add("add", cmd_versions_add, "add a version to a prompt", versions)
    p.add_argument("name")
    add_content_arguments(p)
    p.add_argument("--rationale", default="")
    p.add_argument("--production", action="store_true",
                   help="move the production label to it now (no canary)")

    p = add("diff", cmd_diff, "diff two versions of a prompt")
    p.add_argument("name")
    p.add_argument("a", type=int)
    p.add_argument("b", type=int)

    events = sub.add_parser("events", help="read the event log").add_subparsers(
        dest="sub", required=True, metavar="SUBCOMMAND")
    p = add("tail", cmd_events_tail, "print the newest events", events)
    p.add_argument("--after", type=int, default=None, help="start after this position")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--type", action="append", help="only this event type (repeatable)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    p.add_argument("--interval", type=float, default=1.0)

    token = sub.add_parser("token", help="issue, list or revoke API tokens").add_subparsers(
        dest="sub", required=True, metavar="SUBCOMMAND")
    p = add("issue", cmd_token_issue, "issue a token", token)
    p.add_argument("--role", choices=["agent", "admin"], required=True)
    p.add_argument("--name", default="")
    add("list", cmd_token_list, "list tokens", token)
    p = add("revoke", cmd_token_revoke, "revoke a token", token)
    p.add_argument("token_id")
