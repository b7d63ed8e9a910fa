"""The ``promptd`` command: run the daemon, and administer it over HTTP."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from service.cli.adminclient import AdminClient, CommandError
from service.runtime.settings import settings_help

Handler = Callable[[argparse.Namespace], int]


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


def _client(args: argparse.Namespace) -> AdminClient:
    return AdminClient(args.url, args.token)


def _read_template(args: argparse.Namespace) -> str:
    if args.template is not None:
        return str(args.template)
    if args.template_file is not None:
        if args.template_file == "-":
            return sys.stdin.read()
        path = Path(args.template_file)
        if not path.is_file():
            raise CommandError(f"template file {path} does not exist")
        return path.read_text()
    raise CommandError("give the template with --template TEXT or --template-file PATH")


def _ts(value: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(value)) if value else "-"


# -- serve / replay (work on the database) ---------------------------------------------------

def cmd_serve(args: argparse.Namespace) -> int:
    """Run the daemon until SIGINT/SIGTERM."""
    import uvicorn

    from service.http.app import create_app
    from service.runtime.daemon import Daemon
    from service.runtime.logs import configure_logging
    from service.runtime.settings import Settings

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port),
                                   ("database_url", args.database_url)) if v is not None}
    settings = Settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    daemon = Daemon(settings)
    app = create_app(daemon)
    print(f"promptd serving http://{settings.host}:{settings.port} "
          f"(log: {settings.database_url}; docs: /docs; metrics: /metrics)", file=sys.stderr)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning",
                access_log=False, lifespan="on")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Rebuild every projection from position 0 and compare it with the live database."""
    from service.projections.replay import replay
    from service.runtime.settings import Settings

    url = args.database_url or Settings().database_url
    last = [0.0]

    def progress(position: int, upto: int) -> None:
        now = time.monotonic()
        if now - last[0] > 0.5 and not args.json:
            print(f"  replayed {position}/{upto} events", file=sys.stderr)
            last[0] = now

    report = replay(url, into_url=args.into, progress=progress)
    data = {"position": report.position, "events": report.events, "equal": report.equal,
            "tables": [{"table": t.table, "live_rows": t.live_rows,
                        "replayed_rows": t.replayed_rows, "equal": t.equal}
                       for t in report.tables]}
    emit(args, data, lambda d: table(
        [(t["table"], t["live_rows"], t["replayed_rows"], "yes" if t["equal"] else "NO")
         for t in d["tables"]], ["table", "live rows", "replayed rows", "equal"])
        + f"\nreplayed {d['events']} events up to position {d['position']}: "
        + ("projections EQUAL the live ones" if d["equal"] else "projections DIFFER"))
    return 0 if report.equal else 1


# -- admin commands over HTTP -----------------------------------------------------------------

def cmd_status(args: argparse.Namespace) -> int:
    """Show the daemon's status."""
    data = _client(args).get("/v1/status")
    emit(args, data, lambda d: "\n".join(f"{k:<20} {v}" for k, v in d.items()))
    return 0


def cmd_prompts_list(args: argparse.Namespace) -> int:
    """List prompts."""
    data = _client(args).get("/v1/prompts")
    emit(args, data, lambda d: table(
        [(p["name"], p["latest_version"], p["labels"].get("production"), _ts(p["created_at"]),
          p["description"][:50]) for p in d["prompts"]],
        ["name", "latest", "production", "created", "description"]))
    return 0


def cmd_prompts_show(args: argparse.Namespace) -> int:
    """Show a prompt with its versions and counts."""
    data = _client(args).get(f"/v1/prompts/{args.name}")

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
    body = {"name": args.name, "template": _read_template(args), "description": args.description}
    data = _client(args).post("/v1/prompts", body)
    emit(args, data, lambda d: f"created {d['name']} v1 (production)")
    return 0


def cmd_versions_add(args: argparse.Namespace) -> int:
    """Add a version to a prompt."""
    body = {"template": _read_template(args), "rationale": args.rationale,
            "make_production": args.production}
    data = _client(args).post(f"/v1/prompts/{args.name}/versions", body)
    emit(args, data, lambda d: f"added {d['prompt']} v{d['version']}"
         + (" and made it production" if args.production else ""))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """Show the unified diff between two versions and the newer one's rationale."""
    data = _client(args).get(f"/v1/prompts/{args.name}/diff",
                             params={"from": args.a, "to": args.b})
    emit(args, data, lambda d: (
        f"# v{d['to']} by strategy {d['strategy']}: {d['rationale']}\n"
        + (f"# addresses patterns: {', '.join(d['addressed_patterns'])}\n"
           if d["addressed_patterns"] else "")
        + (d["diff"] or "(no difference)\n")).rstrip("\n"))
    return 0


def cmd_events_tail(args: argparse.Namespace) -> int:
    """Print events from the log; with --follow keep printing new ones."""
    client = _client(args)
    after = args.after
    if after is None:
        head = client.get("/v1/events", params={"after": 0, "limit": 1})["head"]
        after = max(0, head - args.limit)
    while True:
        params: dict[str, Any] = {"after": after, "limit": args.limit}
        if args.type:
            params["type"] = args.type
        data = client.get("/v1/events", params=params)
        for e in data["events"]:
            if args.json:
                print(json.dumps(e, sort_keys=True))
            else:
                summary = json.dumps(e["payload"], sort_keys=True)
                print(f"{e['position']:>8}  {_ts(e['recorded_at'])}  {e['type']:<22} "
                      f"{e['stream']:<32} {summary[:100]}")
        after = data["next_after"]
        if not args.follow:
            return 0
        sys.stdout.flush()
        if not data["events"]:
            time.sleep(args.interval)


def cmd_token_issue(args: argparse.Namespace) -> int:
    """Issue a token; it is printed once and never again."""
    data = _client(args).post("/v1/tokens", {"role": args.role, "name": args.name})
    emit(args, data, lambda d: f"{d['token']}\n(token {d['token_id']}, role {d['role']}; "
         "store it now: promptd keeps only its hash)")
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    """List tokens."""
    data = _client(args).get("/v1/tokens")
    emit(args, data, lambda d: table(
        [(t["token_id"], t["role"], t["name"], "revoked" if t["revoked"] else "active")
         for t in d["tokens"]], ["id", "role", "name", "state"]))
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    """Revoke a token."""
    data = _client(args).request("DELETE", f"/v1/tokens/{args.token_id}")
    emit(args, data, lambda d: f"revoked {d['token_id']}")
    return 0


_TREND = {"new": "new", "growing": "up", "stable": "flat", "shrinking": "down",
          "resolved": "gone"}


def cmd_patterns(args: argparse.Namespace) -> int:
    """Show a prompt's mined failure patterns as a table."""
    data = _client(args).get(f"/v1/prompts/{args.name}/patterns")

    def human(d: dict[str, Any]) -> str:
        if not d["patterns"]:
            return f"{d['prompt']}: no failure patterns mined yet"
        rows = []
        for p in d["patterns"]:
            example = next((e.get("corrected_output") or e.get("reason") or ""
                            for e in p["examples"]), p["representative_reason"])
            rows.append((p["pattern_id"][:10], p["label"][:30], p["size"],
                         f"{p['share']:.1%}", _TREND.get(p["status"], p["status"]),
                         f"{p['severity_score']:.1f}", (example or "").replace("\n", " ")[:48]))
        out = table(rows, ["id", "label", "size", "share", "trend", "severity", "example"])
        out += f"\nmined {_ts(d['mined_at'])}"
        if d["anomalies"]:
            out += "".join(f"\nanomaly: {a['metric']} at {a['rate']:.1%} (z={a['z']:.1f})"
                           for a in d["anomalies"])
        return out

    emit(args, data, human)
    return 0


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _deployment_line(d: dict[str, Any]) -> tuple[Any, ...]:
    arms = " ".join(f"{a['name']}=v{a['version']}" for a in d["arms"])
    weights = " ".join(f"{k}:{v / 100:g}%" for k, v in d["weights"].items())
    return (d["deployment_id"], d["prompt"], d["phase"], f"{d['step_percent']:g}%", arms,
            weights, _ts(d["started_at"]))


def cmd_deploy(args: argparse.Namespace) -> int:
    """Start a canary of one to three versions against production."""
    body: dict[str, Any] = {"prompt": args.prompt, "versions": args.versions}
    if args.steps:
        body["steps"] = [float(x) for x in args.steps.split(",")]
    if args.approval:
        body["requires_approval"] = True
    data = _client(args).post("/v1/deployments", body)
    emit(args, data, lambda d: f"started {d['deployment_id']} for {d['prompt']}: "
         f"{d['phase']} at {d['step_percent']:g}% (steps {d['policy']['steps']})")
    return 0


def cmd_deployments(args: argparse.Namespace) -> int:
    """List live deployments (--all: every one)."""
    params: dict[str, Any] = {"all": str(args.all).lower()}
    if args.prompt:
        params["prompt"] = args.prompt
    data = _client(args).get("/v1/deployments", params=params)
    emit(args, data, lambda d: table([_deployment_line(x) for x in d["deployments"]],
                                     ["id", "prompt", "phase", "step", "arms", "weights",
                                      "started"]) if d["deployments"] else "no deployments")
    return 0


def cmd_deployment_show(args: argparse.Namespace) -> int:
    """Show one deployment: per-arm rates with intervals and the decision a tick would take."""
    data = _client(args).get(f"/v1/deployments/{args.deployment_id}")

    def human(d: dict[str, Any]) -> str:
        head = (f"{d['deployment_id']}  {d['prompt']}  {d['phase']}  step {d['step_index'] + 1}"
                f"/{len(d['policy']['steps'])} ({d['step_percent']:g}%)")
        rows = [(a["arm"], f"v{a['version']}", f"{a['weight']:.1%}", a["executions"],
                 _pct(a["success_rate"]),
                 f"[{a['success_ci'][0]:.3f}, {a['success_ci'][1]:.3f}]",
                 _pct(a["correction_rate"]), _pct(a["error_rate"]),
                 "eliminated" if a["eliminated"] else "")
                for a in d["arms_stats"]]
        out = head + "\n" + table(rows, ["arm", "version", "weight", "n", "success",
                                         "95% CI", "corrections", "errors", ""])
        nxt = d.get("next_decision")
        if nxt:
            out += f"\nnext tick: {nxt['event'] or 'no change'} - {nxt['reason']}"
        elif d.get("outcome_reason"):
            out += f"\noutcome: {d['outcome_reason']}"
        return out

    emit(args, data, human)
    return 0


def _action(name: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        body: dict[str, Any] = {"reason": getattr(args, "reason", "") or ""}
        if name == "promote":
            body["full"] = args.full
            if args.arm:
                body["arm"] = args.arm
        data = _client(args).post(f"/v1/deployments/{args.deployment_id}/{name}", body)
        emit(args, data, lambda d: f"{d['deployment_id']}: {d['event']} "
             f"(now {d['deployment']['phase']}, {d['deployment']['step_percent']:g}%)")
        return 0

    handler.__doc__ = f"{name} a deployment"
    return handler


def cmd_rollback(args: argparse.Namespace) -> int:
    """Roll a prompt back: stop its deployment and/or move production to an earlier version."""
    body: dict[str, Any] = {"reason": args.reason}
    if args.to is not None:
        body["to"] = args.to
    data = _client(args).post(f"/v1/prompts/{args.prompt}/rollback", body)
    emit(args, data, lambda d: (
        (f"rolled back deployment {d['deployment_rolled_back']}; "
         if d["deployment_rolled_back"] else "") + f"production is v{d['production']}"))
    return 0


def _history_line(h: dict[str, Any]) -> tuple[Any, ...]:
    what = h["type"]
    detail = []
    for key in ("version", "label", "strategy", "step_index", "winner", "arm", "trigger"):
        if h.get(key) is not None:
            detail.append(f"{key}={h[key]}")
    if h.get("patterns") is not None:
        detail.append(f"patterns={h['patterns']} {', '.join(h.get('top', []))}")
    text = h.get("reason") or h.get("rationale") or ""
    return (h["position"], _ts(h["recorded_at"]), what, h["actor"][:20], " ".join(detail),
            text[:70])


def cmd_history(args: argparse.Namespace) -> int:
    """Show the timeline of a prompt: versions, deployments, decisions and who made them."""
    data = _client(args).get(f"/v1/prompts/{args.prompt}/history")
    emit(args, data, lambda d: table([_history_line(h) for h in d["history"]],
                                     ["pos", "when", "event", "actor", "detail", "why"]))
    return 0


def cmd_candidates(args: argparse.Namespace) -> int:
    """List machine-written candidates with their strategy, rationale and fate."""
    path = f"/v1/prompts/{args.prompt}/candidates" if args.prompt else "/v1/candidates"
    data = _client(args).get(path)
    emit(args, data, lambda d: table(
        [(c["prompt"], f"v{c['version']}", c["strategy"], c["status"], c["deployment_id"] or "",
          c["rationale"][:60]) for c in d["candidates"]],
        ["prompt", "version", "strategy", "status", "deployment", "rationale"])
        if d["candidates"] else "no candidates yet")
    return 0


def cmd_policy(args: argparse.Namespace) -> int:
    """Show a prompt's canary policy, or set overrides with --set key=value (JSON values)."""
    client = _client(args)
    if args.set:
        overrides: dict[str, Any] = {}
        for item in args.set:
            key, sep, raw = item.partition("=")
            if not sep:
                raise CommandError(f"--set {item!r}: expected key=value")
            try:
                overrides[key] = json.loads(raw)
            except json.JSONDecodeError:
                overrides[key] = raw
        data = client.request("PUT", f"/v1/prompts/{args.prompt}/policy",
                              json={"overrides": overrides})
    else:
        data = client.get(f"/v1/prompts/{args.prompt}/policy")
    emit(args, data, lambda d: "\n".join(f"{k:<28} {v}" for k, v in d["policy"].items()))
    return 0


def cmd_jobs_run(args: argparse.Namespace) -> int:
    """Run a scheduled job (mine, improve, canary) now."""
    data = _client(args).post(f"/v1/jobs/{args.job}")
    emit(args, data, lambda d: f"{d['job']}: ok ({d['result']})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the closed loop on a fresh embedded daemon with a simulated fleet."""
    from service.simulation.demo import run_demo

    return run_demo(duration_s=args.duration, seed=args.seed,
                    data_dir=Path(args.data_dir) if args.data_dir else None,
                    agents=args.agents, rate_per_s=args.rate or None)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run the simulated fleet against a running daemon."""
    from service.cli.adminclient import default_token
    from service.simulation.demo import run_simulate

    url = args.url or os.environ.get("PROMPTD_URL") or "http://127.0.0.1:8077"
    return run_simulate(url, args.token or default_token(), duration_s=args.duration,
                        seed=args.seed, agents=args.agents, rate_per_s=args.rate or None,
                        harmful=args.harmful)


# -- parser -------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for every ``promptd`` command."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=None,
                        help="daemon URL (env PROMPTD_URL, default http://127.0.0.1:8077)")
    common.add_argument("--token", default=None,
                        help="admin token (env PROMPTD_TOKEN, else var/admin.token)")
    common.add_argument("--json", action="store_true", help="print JSON for scripts")

    parser = argparse.ArgumentParser(prog="promptd", description=(
        "promptd: event-sourced daemon that keeps improving the prompts of LLM agents."))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler, help_: str, parent: Any = sub,
            **kwargs: Any) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, parents=[common], help=help_,
                                                       description=help_, **kwargs)
        p.set_defaults(handler=handler)
        return p

    p = add("serve", cmd_serve, "run the daemon", epilog=settings_help(),
            formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--database-url", default=None)

    p = add("replay", cmd_replay, "rebuild projections from position 0 and compare with live")
    p.add_argument("--database-url", default=None, help="live database (default: settings)")
    p.add_argument("--into", default=None, help="rebuild into this URL (default: temp SQLite)")

    add("status", cmd_status, "show the daemon's status")

    prompts = sub.add_parser("prompts", help="list, show or create prompts").add_subparsers(
        dest="sub", required=True, metavar="SUBCOMMAND")
    add("list", cmd_prompts_list, "list prompts", prompts)
    p = add("show", cmd_prompts_show, "show a prompt, its versions and counts", prompts)
    p.add_argument("name")
    p = add("create", cmd_prompts_create, "create a prompt with its first version", prompts)
    p.add_argument("name")
    p.add_argument("--template")
    p.add_argument("--template-file", help="path, or - for stdin")
    p.add_argument("--description", default="")

    versions = sub.add_parser("versions", help="add versions").add_subparsers(
        dest="sub", required=True, metavar="SUBCOMMAND")
    p = add("add", cmd_versions_add, "add a version to a prompt", versions)
    p.add_argument("name")
    p.add_argument("--template")
    p.add_argument("--template-file", help="path, or - for stdin")
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
    p = add("patterns", cmd_patterns, "show a prompt's mined failure patterns")
    p.add_argument("name")

    p = add("candidates", cmd_candidates, "list machine-written candidate versions")
    p.add_argument("prompt", nargs="?")

    p = add("deploy", cmd_deploy, "start a canary of versions against production")
    p.add_argument("prompt")
    p.add_argument("versions", type=int, nargs="+", help="one to three candidate versions")
    p.add_argument("--steps", help="comma-separated percentages, e.g. 5,25,50,100")
    p.add_argument("--approval", action="store_true", help="wait for `promptd approve` first")

    p = add("deployments", cmd_deployments, "list deployments")
    p.add_argument("--all", action="store_true", help="include ended deployments")
    p.add_argument("--prompt")

    deployment = sub.add_parser("deployment", help="inspect one deployment").add_subparsers(
        dest="sub", required=True, metavar="SUBCOMMAND")
    p = add("show", cmd_deployment_show, "per-arm statistics and the pending decision",
            deployment)
    p.add_argument("deployment_id")

    for verb in ("approve", "reject", "promote", "pause", "resume"):
        p = add(verb, _action(verb), f"{verb} a deployment")
        p.add_argument("deployment_id")
        p.add_argument("--reason", default="")
        if verb == "promote":
            p.add_argument("--full", action="store_true", help="skip the remaining steps")
            p.add_argument("--arm", help="the winner, when several arms are live")

    p = add("rollback", cmd_rollback, "roll a prompt back (deployment and/or production)")
    p.add_argument("prompt")
    p.add_argument("--to", type=int, help="version to make production")
    p.add_argument("--reason", default="")

    p = add("history", cmd_history, "timeline of versions, deployments and decisions")
    p.add_argument("prompt")

    p = add("policy", cmd_policy, "show or set a prompt's canary policy")
    p.add_argument("prompt")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")

    jobs = sub.add_parser("jobs", help="run scheduled jobs now").add_subparsers(
        dest="sub", required=True, metavar="SUBCOMMAND")
    p = add("run", cmd_jobs_run, "run a job now", jobs)
    p.add_argument("job", choices=["mine", "improve", "canary"])
    for name, handler, help_ in (
        ("demo", cmd_demo, "run the closed loop: embedded daemon plus a simulated fleet"),
        ("simulate", cmd_simulate, "run the simulated fleet against a running daemon"),
    ):
        p = add(name, handler, help_)
        p.add_argument("--duration", type=float, default=180.0, help="seconds (default 180)")
        p.add_argument("--seed", type=int, default=7)
        p.add_argument("--agents", type=int, default=6)
        p.add_argument("--rate", type=float, default=150.0,
                       help="executions per second per prompt (0: as fast as possible)")
        if name == "demo":
            p.add_argument("--data-dir", help="default: a fresh var/demo-<time>/")
        else:
            p.add_argument("--harmful", action="store_true",
                           help="also hand-deploy a harmful edit to watch it roll back")
    for extend in EXTENSIONS:
        extend(sub, add)
    return parser


# Later features register their commands here (rollout, mining, improver, demo).
EXTENSIONS: list[Callable[[Any, Callable[..., argparse.ArgumentParser]], None]] = []


def _backup_commands(sub: Any, add: Callable[..., argparse.ArgumentParser]) -> None:
    # service.store.backup loads SQLAlchemy: import it only when one of its commands runs.
    def lazy(name: str) -> Handler:
        def run(args: argparse.Namespace) -> int:
            from service.store import backup

            return int(getattr(backup, name)(args))
        return run

    p = add("backup", lazy("cmd_backup"), "copy the SQLite log to PATH while the daemon runs")
    p.add_argument("path")
    p.add_argument("--database-url", default=None, help="live database (default: settings)")
    p = add("restore", lazy("cmd_restore"),
            "load a backup into an empty database (SQLite or PostgreSQL); stop the daemon first")
    p.add_argument("path")
    p.add_argument("--database-url", default=None, help="target database (default: settings)")
    p.add_argument("--force", action="store_true",
                   help="replace a SQLite log that already holds events")


EXTENSIONS.append(_backup_commands)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``promptd`` command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except CommandError as exc:
        print(f"promptd {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
