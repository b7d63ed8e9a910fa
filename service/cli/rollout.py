"""Commands on rollouts: deploy, inspect, decide, roll back, history, candidates, policy."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from service.cli.base import AddCommand, CommandError, Handler, client
from service.cli.evidence import LEGEND, chart, latest_lines, plan_lines
from service.cli.output import emit, pct, table, ts
from service.cli.waiting import deploy_when_free, wait_interrupted
from service.sdk import AdminClient


def share(fraction: float) -> str:
    """Return a share of traffic as a percentage with no trailing zeros."""
    return f"{fraction * 100:.4g}%"


def _step(d: dict[str, Any]) -> str:
    return f"step {d['step']}/{d['steps']}"


def _deployment_line(d: dict[str, Any]) -> tuple[Any, ...]:
    arms = " ".join(f"{a['name']}=v{a['version']}" for a in d["arms"])
    weights = " ".join(f"{k}:{share(v)}" for k, v in d["weights"].items())
    return (d["deployment_id"], d["prompt"], d["phase"], _step(d), share(d["candidate_share"]),
            arms, weights, ts(d["started_at"]))


def _ramp(d: dict[str, Any]) -> str:
    return " -> ".join(share(x) for x in d["candidate_share_by_step"])


def percent_steps(text: str) -> list[float]:
    """Return ``--steps 5,25,50,100`` as numbers (an argparse ``type``)."""
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated percentages such as 5,25,50,100, got {text!r}") from None


def deployment_id(api: AdminClient, given: str) -> str:
    """Return the full id of the one deployment whose id starts with ``given`` (like git)."""
    prefix = given if given.startswith("dep-") else f"dep-{given}"
    found = api.get("/v1/deployments", params={"all": "true", "id_prefix": prefix,
                                                "limit": 5})["deployments"]
    ids = [d["deployment_id"] for d in found]
    if given in ids or len(ids) == 1:
        return given if given in ids else str(ids[0])
    if not ids:
        raise CommandError(f"no deployment id starts with {given!r}")
    raise CommandError(f"{given!r} is ambiguous: it starts {', '.join(ids[:4])}"
                       + (", ..." if len(ids) > 4 else "") + "; give more characters")


def cmd_deploy(args: argparse.Namespace) -> int:
    """Start a canary of one to three versions against production.

    A machine canary holding the prompt is superseded; with --wait the command queues
    behind whatever holds it instead. A person's deployment is never superseded (409).
    """
    body: dict[str, Any] = {"prompt": args.prompt, "versions": args.versions}
    if args.steps:
        body["steps"] = args.steps
    if args.approval:
        body["requires_approval"] = True
    api = client(args)
    if args.wait:
        try:
            data = deploy_when_free(api, body, timeout_s=args.timeout, poll_s=args.poll)
        except KeyboardInterrupt as exc:
            print(f"{args.verb}: {wait_interrupted(api, args.prompt, exc)}", file=sys.stderr)
            return 130
    else:
        data = api.post("/v1/deployments", body)
    emit(args, data, lambda d: f"started {d['deployment_id']} for {d['prompt']}: {d['phase']}, "
         f"candidates get {share(d['candidate_share'])} of traffic ({_step(d)}; "
         f"ramp {_ramp(d)})")
    return 0


def cmd_deployments(args: argparse.Namespace) -> int:
    """List live deployments (--all: every one)."""
    params: dict[str, Any] = {"all": str(args.all).lower()}
    if args.prompt:
        params["prompt"] = args.prompt
    data = client(args).get("/v1/deployments", params=params)
    emit(args, data, lambda d: table([_deployment_line(x) for x in d["deployments"]],
                                     ["id", "prompt", "phase", "step", "to candidates", "arms",
                                      "traffic", "started"])
         if d["deployments"] else "no deployments")
    return 0


TICKS_SHOWN = 600  # the newest ticks the chart reads from the log


def _ticks(api: AdminClient, dep: str) -> list[dict[str, Any]]:
    """Return the newest ``canary.analysed`` records of a deployment, oldest first."""
    page = api.get("/v1/events", params={"type": "canary.analysed", "stream": f"canary:{dep}",
                                         "last": TICKS_SHOWN})
    return [e["payload"] for e in page["events"]]


def _evidence_chart(d: dict[str, Any], ticks: list[dict[str, Any]]) -> str:
    primary = d["policy"]["primary_metric"]
    arms = [a["name"] for a in d["arms"] if a["name"] != "control"]
    parts = []
    for arm in arms:
        parts.append(chart(ticks, arm, primary))
        if ticks:
            parts.append("\n".join(latest_lines(ticks[-1], arm, primary)))
    if ticks:
        parts.append(LEGEND)
    return "\n".join(p for p in parts if p)


def cmd_deployment_show(args: argparse.Namespace) -> int:
    """Show one deployment: per-arm rates with intervals, the decision a tick would take, the
    candidates' bounds over ticks against the boundaries, and the plan."""
    api = client(args)
    dep = deployment_id(api, args.deployment_id)
    data = api.get(f"/v1/deployments/{dep}")
    ticks = _ticks(api, dep)
    if args.json:
        data["ticks"] = ticks

    def human(d: dict[str, Any]) -> str:
        head = (f"{d['deployment_id']}  {d['prompt']}  {d['phase']}  {_step(d)}: candidates "
                f"get {share(d['candidate_share'])} of traffic (ramp {_ramp(d)})")
        rows = [(a["arm"], f"v{a['version']}", share(a["weight"]), a["executions"],
                 pct(a["success_rate"]),
                 f"[{a['success_ci'][0]:.3f}, {a['success_ci'][1]:.3f}]",
                 pct(a["correction_rate"]), pct(a["error_rate"]),
                 "eliminated" if a["eliminated"] else "")
                for a in d["arms_stats"]]
        out = head + "\n" + table(rows, ["arm", "version", "traffic", "n", "success",
                                         "95% CI", "corrections", "errors", ""])
        nxt = d.get("next_decision")
        if nxt:
            out += f"\nnext tick: {nxt['event'] or 'no change'} - {nxt['reason']}"
        elif d.get("outcome_reason"):
            out += f"\noutcome: {d['outcome_reason']}"
        return "\n\n".join([out, _evidence_chart(d, ticks), "\n".join(plan_lines(d["plan"]))])

    emit(args, data, human)
    return 0


def _unproven_arms(api: AdminClient, dep: str, args: argparse.Namespace) -> list[str]:
    """Return the live candidates a promotion would ship without a single execution."""
    d = api.get(f"/v1/deployments/{dep}")
    ships = args.full or d["step"] == d["steps"] or d["phase"] == "awaiting_promotion"
    if not ships:
        return []
    arms = [a for a in d["arms_stats"] if a["arm"] != "control" and not a["eliminated"]
            and (args.arm is None or a["arm"] == args.arm)]
    return [f"{a['arm']} (v{a['version']})" for a in arms if a["executions"] == 0]


def _action(name: str) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        api = client(args)
        dep = deployment_id(api, args.deployment_id)
        body: dict[str, Any] = {"reason": getattr(args, "reason", "") or ""}
        if name == "promote":
            body["full"] = args.full
            if args.arm:
                body["arm"] = args.arm
            unproven = _unproven_arms(api, dep, args)
            if unproven:
                warning = (f"{', '.join(unproven)} has no executions yet: promoting ships it "
                           "to every request on no evidence")
                if not args.yes:
                    raise CommandError(f"{warning}; run again with --yes to do it anyway")
                print(f"{args.verb}: warning: {warning}", file=sys.stderr)
        data = api.post(f"/v1/deployments/{dep}/{name}", body)
        emit(args, data, lambda d: f"{d['deployment_id']}: {d['event']} "
             f"(now {d['deployment']['phase']}, {_step(d['deployment'])}, candidates get "
             f"{share(d['deployment']['candidate_share'])} of traffic)")
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
    for key in ("version", "label", "previous", "kind", "protected", "strategy", "winner",
                "arm", "trigger"):
        if h.get(key) is not None:
            detail.append(f"{key}={h[key]}")
    if h.get("step_index") is not None:  # the log counts steps from 0, people from 1
        detail.append(f"step={h['step_index'] + 1}")
    if h.get("patterns") is not None:
        detail.append(f"patterns={h['patterns']} {', '.join(h.get('top', []))}")
    text = h.get("reason") or h.get("rationale") or ""
    who = h.get("actor_name") or h["actor"]
    return (h["position"], ts(h["recorded_at"]), what, who[:24], " ".join(detail), text[:70])


def cmd_history(args: argparse.Namespace) -> int:
    """Show the timeline of a prompt: versions, deployments, decisions and who made them."""
    data = client(args).get(f"/v1/prompts/{args.prompt}/history")
    emit(args, data, lambda d: table([_history_line(h) for h in d["history"]],
                                     ["pos", "when", "event", "actor", "detail", "why"]))
    return 0


def gate_cell(gate: dict[str, Any] | None) -> str:
    """Return the offline gate's result as wins/losses/ties, p and verdict ("-": no gate ran)."""
    if not gate:
        return "-"
    verdict = "passed" if gate["passed"] else "failed"
    return f"{gate['wins']}/{gate['losses']}/{gate['ties']} p={gate['p_value']:.2g} {verdict}"


def _rejections(api: AdminClient, candidates: list[dict[str, Any]]) -> dict[tuple[str, int], str]:
    """Return the recorded reason of each rejected candidate, from its prompt's history."""
    reasons: dict[tuple[str, int], str] = {}
    for prompt in sorted({c["prompt"] for c in candidates if c["status"] == "rejected"}):
        history = api.get(f"/v1/prompts/{prompt}/history", params={"limit": 10_000})["history"]
        for h in history:
            if h["type"] == "candidate.rejected":
                reasons[(prompt, int(h["version"]))] = str(h.get("reason") or "")
    return reasons


def candidates_text(d: dict[str, Any], reasons: dict[tuple[str, int], str]) -> str:
    """Return candidates as a table, the offline gate's result in its own column, then why
    each rejected one was rejected."""
    if not d["candidates"]:
        return "no candidates yet"
    out = table([(c["prompt"], f"v{c['version']}", c["strategy"], c["status"],
                  gate_cell(c.get("gate")), c["deployment_id"] or "", c["rationale"][:60])
                 for c in d["candidates"]],
                ["prompt", "version", "strategy", "status", "gate w/l/t", "deployment",
                 "rationale"])
    for c in d["candidates"]:
        if c["status"] == "rejected":
            # An older rejection may be past the history's limit: the gate's counts say it.
            why = (reasons.get((c["prompt"], c["version"]))
                   or (f"offline gate {gate_cell(c['gate'])}" if c.get("gate") else "no reason"))
            out += f"\nrejected {c['prompt']} v{c['version']}: {why}"
    if any(c.get("gate") for c in d["candidates"]):
        out += ("\ngate: an LLM judged candidate against control on recorded corrections "
                "(wins/losses/ties,\none-sided sign test p); only a candidate that won more "
                "than it lost went live")
    return out


def cmd_candidates(args: argparse.Namespace) -> int:
    """List machine-written candidates with their strategy, offline gate, rationale and fate."""
    api = client(args)
    path = f"/v1/prompts/{args.prompt}/candidates" if args.prompt else "/v1/candidates"
    data = api.get(path)
    reasons = {} if args.json else _rejections(api, data["candidates"])
    emit(args, data, lambda d: candidates_text(d, reasons))
    return 0


def policy_value(raw: str) -> Any:
    """Return a ``--set`` value: JSON, or comma-separated numbers as a list, else the text."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        pass
    if "," in raw:
        try:
            return [json.loads(x) for x in raw.split(",")]
        except json.JSONDecodeError:
            pass
    return raw


def _policy_help() -> str:
    # The admin commands work with the SDK alone; the policy model needs only pydantic.
    from deploy.policy import CanaryPolicy

    defaults = CanaryPolicy().to_json()
    width = max(map(len, defaults))
    lines = ["keys (with their defaults):"]
    for name, default in defaults.items():
        shown = json.dumps(default)
        if name == "guardrails":
            shown = "[{metric, tolerance, relative, weight, enabled}, ...] (see GET .../policy)"
        lines.append(f"  {name:<{width}}  {shown}")
    return "\n".join([
        "--set KEY=VALUE adds or changes one override and keeps the others; --unset KEY",
        "removes one (the default applies again). VALUE is JSON (500, 0.02, true, \"hold\",",
        "[5, 25, 100]) or comma-separated numbers (steps=10,50,100). Steps are percentages of",
        "the full comparison split, which serves control and each candidate equally: with one",
        "candidate, 100 sends half of the traffic to it.", "", *lines])


def cmd_policy(args: argparse.Namespace) -> int:
    """Show a prompt's canary policy, or change its overrides with --set and --unset."""
    api = client(args)
    path = f"/v1/prompts/{args.prompt}/policy"
    if args.set or args.unset:
        overrides: dict[str, Any] = dict(api.get(path)["overrides"])
        for key in args.unset or ():
            if key not in overrides:
                raise CommandError(f"--unset {key}: not overridden (overridden: "
                                   f"{', '.join(sorted(overrides)) or 'nothing'})")
            del overrides[key]
        for item in args.set or ():
            key, sep, raw = item.partition("=")
            if not sep or not key:
                raise CommandError(f"--set {item!r}: expected KEY=VALUE, e.g. steps=10,50,100")
            overrides[key] = policy_value(raw)
        data = api.request("PUT", path, json={"overrides": overrides})
    else:
        data = api.get(path)

    def human(d: dict[str, Any]) -> str:
        return "\n".join([*(f"{k:<28} {json.dumps(v)}" + ("  (overridden)"
                                                          if k in d["overrides"] else "")
                            for k, v in d["policy"].items()), "", *plan_lines(d["plan"])])

    emit(args, data, human)
    return 0


def register(sub: Any, add: AddCommand) -> None:
    """Add candidates, deploy, deployments, deployment show, the decisions and rollback."""
    p = add("candidates", cmd_candidates, "list machine-written candidate versions")
    p.add_argument("prompt", nargs="?")

    p = add("deploy", cmd_deploy, "start a canary of versions against production")
    p.add_argument("prompt")
    p.add_argument("versions", type=int, nargs="+", help="one to three candidate versions")
    p.add_argument("--steps", type=percent_steps, help=(
        "comma-separated percentages of the full comparison split, ending at 100, e.g. "
        "5,25,50,100: with one candidate that sends it 2.5%%, 12.5%%, 25%%, then 50%% of "
        "traffic"))
    p.add_argument("--approval", action="store_true", help="wait for `promptd approve` first")
    p.add_argument("--wait", action="store_true", help=(
        "if a deployment holds the prompt, queue behind it instead of superseding a machine "
        "canary: say which one holds it every 10 s, deploy once it has ended"))
    p.add_argument("--timeout", type=float, default=3600.0, metavar="SECONDS",
                   help="with --wait: give up after this long (default 3600)")
    p.add_argument("--poll", type=float, default=2.0, help=argparse.SUPPRESS)

    p = add("deployments", cmd_deployments, "list deployments")
    p.add_argument("--all", action="store_true", help="include ended deployments")
    p.add_argument("--prompt")

    deployment = sub.add_parser("deployment", help="inspect one deployment").add_subparsers(
        dest="sub", required=True, metavar="SUBCOMMAND")
    p = add("show", cmd_deployment_show, "per-arm statistics and the pending decision",
            deployment)
    p.add_argument("deployment_id", help="the id, or a unique prefix of it")

    for verb in ("approve", "reject", "promote", "pause", "resume"):
        p = add(verb, _action(verb), f"{verb} a deployment")
        p.add_argument("deployment_id", help="the id, or a unique prefix of it")
        p.add_argument("--reason", default="")
        if verb == "promote":
            p.add_argument("--full", action="store_true", help="skip the remaining steps")
            p.add_argument("--arm", help="the winner, when several arms are live")
            p.add_argument("--yes", action="store_true",
                           help="promote even when the candidate has no executions yet")

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

    p = add("policy", cmd_policy, "show or change a prompt's canary policy overrides",
            epilog=_policy_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prompt")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="add or change one override (repeatable)")
    p.add_argument("--unset", action="append", metavar="KEY",
                   help="remove one override (repeatable)")
