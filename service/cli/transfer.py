"""``promptd prompts export`` and ``import``: prompts as JSON or YAML files, to keep in git.

Export writes every version (template or messages, config, provenance), the labels and
the protected labels; import appends the versions a prompt does not have yet and moves
the labels (see ``service.commands.imports``): history is never rewritten, and importing
the same file again changes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from service.cli.base import AddCommand, CommandError, client, read_document
from service.cli.output import emit


def _subcommands(sub: Any, group: str) -> Any:
    # argparse has no public way back to a group's subparsers; the prompts group is
    # registry's, and its export/import verbs live here.
    parser = sub.choices[group]
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _dump(data: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    import yaml  # deferred: only import/export read and write YAML

    # Block style keeps multi-line templates readable (and diffable) in git.
    class _Dumper(yaml.SafeDumper):
        pass

    def _text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Dumper.add_representer(str, _text)
    return str(yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                         width=100))


def cmd_export(args: argparse.Namespace) -> int:
    """Write prompts, versions, labels and configs as YAML or JSON."""
    if bool(args.names) == args.all:
        raise CommandError("name the prompts to export, or give --all")
    params = {} if args.all else {"prompt": args.names}
    data = client(args).get("/v1/export", params=params)
    fmt = args.format or ("json" if args.json or (args.output or "").endswith(".json")
                          else "yaml")
    text = _dump(data, fmt)
    if args.output and args.output != "-":
        Path(args.output).write_text(text)
        print(f"exported {len(data['prompts'])} prompt(s) to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _was(version: int | None) -> str:
    return f"v{version}" if version is not None else "unset"


def cmd_import(args: argparse.Namespace) -> int:
    """Append the versions a prompt does not have, and move its labels."""
    document = read_document(args.file)
    source = args.source or (Path(args.file).name if args.file != "-" else "stdin")
    data = client(args).post("/v1/import", document, params={"source": source})

    def human(d: dict[str, Any]) -> str:
        lines = []
        for r in d["imported"]:
            head = "created" if r["created"] else "updated"
            added = ", ".join(f"v{v}" for v in r["added"]) or "no new version"
            moves = ", ".join(f"{label} {_was(m['from'])} -> v{m['to']}"
                              for label, m in r["labels"].items())
            lines.append(f"{head} {r['prompt']}: {added}" + (f"; {moves}" if moves else ""))
        return "\n".join(lines)

    emit(args, data, human)
    return 0


def register(sub: Any, add: AddCommand) -> None:
    """Add ``prompts export`` and ``prompts import`` to the prompts group."""
    prompts = _subcommands(sub, "prompts")
    p = add("export", cmd_export, "write prompts with their versions, labels and configs",
            prompts)
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("--all", action="store_true", help="every prompt")
    p.add_argument("--output", "-o", help="file to write (default: stdout)")
    p.add_argument("--format", choices=["yaml", "json"], default=None,
                   help="default: yaml (json for --json or a .json file)")
    p = add("import", cmd_import, "append new versions and move labels from a file",
            prompts)
    p.add_argument("file", help="a JSON or YAML export (- for stdin)")
    p.add_argument("--source", default=None, help="where it came from, for the log")
