"""Commands on rollouts: deploy, inspect, decide, roll back, history, candidates, policy."""

from __future__ import annotations

import argparse
import json
from typing import Any

from service.cli.base import AddCommand, CommandError, Handler, client
from service.cli.output import emit, pct, table, ts


def _deployment_line(d: dict[str, Any]) -> tuple[Any, ...]:
    arms = " ".join(f"{a['name']}=v{a['version']}" for a in d["arms"])
    weights = " ".join(f"{k}:{v / 100:g}%" for k, v in d["weights"].items())
    return (d["deployment_id"], d["prompt"], d["phase"], f"{d['step_percent']:g}%", arms,
            weights, ts(d["started_at"]))


def cmd_deploy(args: argparse.Namespace) -> int:
    """Start a canary of one to three versions against production."""
    body: dict[str, Any] = {"prompt": args.prompt, "versions": args.versions}
    if args.steps:
        body["steps"] = [float(x) for x in args.steps.split(",")]
    if args.approval:
        body["requires_approval"] = True
    data = client(args).post("/v1/deployments", body)
    emit(args, data, lambda d: f"started {d['deployment_id']} for {d['prompt']}: "
         f"{d['phase']} at {d['step_percent']:g}% (steps {d['policy']['steps']})")
    return 0


def cmd_deployments(args: argparse.Namespace) -> int:
    """List live deployments (--all: every one)."""
    params: dict[str, Any] = {"all": str(args.all).lower()}
    if args.prompt:
        params["prompt"] = args.prompt
    data = client(args).get("/v1/deployments", params=params)
    emit(args, data, lambda d: table([_deployment_line(x) for x in d["deployments"]],
                                     ["id", "prompt", "phase", "step", "arms", "weights",
                                      "started"]) if d["deployments"] else "no deployments")
    return 0


def cmd_deployment_show(args: argparse.Namespace) -> int:
    """Show one deployment: per-arm rates with intervals and the decision a tick would take."""
    data = client(args).get(f"/v1/deployments/{args.deployment_id}")

    def human(d: dict[str, Any]) -> str:
        head = (f"{d['deployment_id']}  {d['prompt']}  {d['phase']}  step {d['step_index'] + 1}"
                f"/{len(d['policy']['steps'])} ({d['step_percent']:g}%)")
        rows = [(a["arm"], f"v{a['version']}", f"{a['weight']:.1%}", a["executions"],
                 pct(a["success_rate"]),
                 f"[{a['success_ci'][0]:.3f}, {a['success_ci'][1]:.3f}]",
                 pct(a["correction_rate"]), pct(a["error_rate"]),
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
        data = client(args).post(f"/v1/deployments/{args.deployment_id}/{name}", body)
        emit(args, data, lambda d: f"{d['deployment_id']}: {d['event']} "
             f"(now {d['deployment']['phase']}, {d['deployment']['step_percent']:g}%)")
        return 0

    handler.__doc__ = f"{name} a deployment"
    return handler


def cmd_rollback(args: argparse.Namespace) -> int:
    """Roll a prompt back: stop its running deployment, or move production one step back.

    Safe to repeat: once the newest change is rolled back, running it again changes nothing
    (``--from N`` with the current version goes back one step further on purpose).
    """
    body: dict[str, Any] = {"reason": args.reason}
    if args.to is not None:
        body["to"] = args.to
    if args.from_ is not None:
        body["from"] = args.from_
    data = client(args).post(f"/v1/prompts/{args.prompt}/rollback", body)

    def human(d: dict[str, Any]) -> str:
        if not d.get("changed", True):
            return f"nothing to do ({d['note']}); production is v{d['production']}"
        return ((f"rolled back deployment {d['deployment_rolled_back']}; "
                 if d["deployment_rolled_back"] else "") + f"production is v{d['production']}")

    emit(args, data, human)
    return 0


def _history_line(h: dict[str, Any]) -> tuple[Any, ...]:
    what = h["type"]
    detail = []
    for key in ("version", "label", "previous", "kind", "protected", "strategy", "step_index",
                "winner", "arm", "trigger"):
        if h.get(key) is not None:
            detail.append(f"{key}={h[key]}")
    if h.get("patterns") is not None:
        detail.append(f"patterns={h['patterns']} {', '.join(h.get('top', []))}")
    text = h.get("reason") or h.get("rationale") or ""
    return (h["position"], ts(h["recorded_at"]), what, h["actor"][:20], " ".join(detail),
            text[:70])


def cmd_history(args: argparse.Namespace) -> int:
    """Show the timeline of a prompt: versions, deployments, decisions and who made them."""
    data = client(args).get(f"/v1/prompts/{args.prompt}/history")
    emit(args, data, lambda d: table([_history_line(h) for h in d["history"]],
                                     ["pos", "when", "event", "actor", "detail", "why"]))
    return 0


def cmd_candidates(args: argparse.Namespace) -> int:
    """List machine-written candidates with their strategy, rationale and fate."""
    path = f"/v1/prompts/{args.prompt}/candidates" if args.prompt else "/v1/candidates"
    data = client(args).get(path)
    emit(args, data, lambda d: table(
        [(c["prompt"], f"v{c['version']}", c["strategy"], c["status"], c["deployment_id"] or "",
          c["rationale"][:60]) for c in d["candidates"]],
        ["prompt", "version", "strategy", "status", "deployment", "rationale"])
        if d["candidates"] else "no candidates yet")
    return 0


def cmd_policy(args: argparse.Namespace) -> int:
    """Show a prompt's canary policy, or set overrides with --set key=value (JSON values)."""
    api = client(args)
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
        data = api.request("PUT", f"/v1/prompts/{args.prompt}/policy",
                              json={"overrides": overrides})
    else:
        data = api.get(f"/v1/prompts/{args.prompt}/policy")
    emit(args, data, lambda d: "\n".join(f"{k:<28} {v}" for k, v in d["policy"].items()))
    return 0


def register(sub: Any, add: AddCommand) -> None:
    """Add candidates, deploy, deployments, deployment show, the decisions and rollback."""
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
    p.add_argument("--from", dest="from_", type=int, metavar="N",
                   help="the production version you are rolling back: if it was already "
                        "rolled back, nothing happens; if it is still production, it goes "
                        "back one more step of the label's history")
    p.add_argument("--reason", default="")

    p = add("history", cmd_history, "timeline of versions, deployments and decisions")
    p.add_argument("prompt")

    p = add("policy", cmd_policy, "show or set a prompt's canary policy")
    p.add_argument("prompt")
    p.add_argument("--set", action="append", metavar="KEY=VALUE")
