"""Commands on labels: set one (with expected-version safety), list, history, protect."""

from __future__ import annotations

import argparse
from typing import Any

from service.cli.base import AddCommand, client
from service.cli.output import emit, table, ts


def _version_arg(value: str) -> int:
    number = int(value.removeprefix("v"))
    if number < 0:
        raise argparse.ArgumentTypeError("a version is 1 or more (0 with --from: not set)")
    return number


def cmd_label_set(args: argparse.Namespace) -> int:
    """Point a label at a version; with --from, only if it still points where you saw it."""
    body: dict[str, Any] = {"version": args.version, "reason": args.reason}
    if args.from_ is not None:
        body["from"] = args.from_
    data = client(args).request("PUT", f"/v1/prompts/{args.name}/labels/{args.label}",
                                json=body)

    def human(d: dict[str, Any]) -> str:
        if not d["changed"]:
            return f"{d['label']} already points at v{d['version']}; nothing changed"
        before = f"v{d['previous']}" if d["previous"] is not None else "unset"
        return f"{d['prompt']}: {d['label']} {before} -> v{d['version']}"

    emit(args, data, human)
    return 0


def cmd_label_list(args: argparse.Namespace) -> int:
    """List a prompt's labels: version, protection, who moved each last and when."""
    data = client(args).get(f"/v1/prompts/{args.name}/labels")
    emit(args, data, lambda d: table(
        [(lbl["label"], f"v{lbl['version']}",
          "protected" if lbl["protected"] else ("automatic" if lbl["automatic"] else ""),
          ts(lbl["moved_at"]), lbl["moved_by"] or "") for lbl in d["labels"]],
        ["label", "version", "", "moved", "by"]))
    return 0


def _move_line(m: dict[str, Any]) -> tuple[Any, ...]:
    before = f"v{m['previous']}" if m["previous"] is not None else "-"
    return (ts(m["at"]), m["label"], f"{before} -> v{m['version']}", m["kind"],
            m["actor"][:24], m["reason"][:60])


def cmd_label_history(args: argparse.Namespace) -> int:
    """Show who moved which label from which version to which, when and why."""
    params = {"label": args.label} if args.label else {}
    data = client(args).get(f"/v1/prompts/{args.name}/labels", params=params)
    emit(args, data, lambda d: table([_move_line(m) for m in d["history"]],
                                     ["when", "label", "move", "kind", "actor", "why"]))
    return 0


def cmd_label_protect(args: argparse.Namespace) -> int:
    """Protect a label (only admin tokens move it), or lift that with --off."""
    data = client(args).post(f"/v1/prompts/{args.name}/labels/{args.label}/protect",
                             {"protected": not args.off, "reason": args.reason})
    state = "protected" if data["protected"] else "unprotected"
    emit(args, data, lambda d: f"{d['label']} is {state}"
         + ("" if d["changed"] else " (it already was)"))
    return 0


def register(sub: Any, add: AddCommand) -> None:
    """Add ``label set|list|history|protect``."""
    label = sub.add_parser("label", help="move, list and protect labels").add_subparsers(
        dest="sub", required=True, metavar="SUBCOMMAND")
    p = add("set", cmd_label_set, "point a label at a version", label)
    p.add_argument("name")
    p.add_argument("label")
    p.add_argument("version", type=_version_arg)
    p.add_argument("--from", dest="from_", type=_version_arg, default=None, help=(
        "the version you saw the label at (0: not set); if it moved since, nothing changes"))
    p.add_argument("--reason", default="")
    p = add("list", cmd_label_list, "list a prompt's labels", label)
    p.add_argument("name")
    p = add("history", cmd_label_history, "who moved which label, when and why", label)
    p.add_argument("name")
    p.add_argument("label", nargs="?")
    p = add("protect", cmd_label_protect, "let only admin tokens move a label", label)
    p.add_argument("name")
    p.add_argument("label")
    p.add_argument("--off", action="store_true", help="lift the protection")
    p.add_argument("--reason", default="")
