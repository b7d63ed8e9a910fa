"""The ``promptd`` parser and entry point: each command group registers its own commands."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from service.cli import database, labels, loop, registry, rollout, transfer
from service.cli.base import CommandError, Handler

GROUPS = (database, registry, rollout, loop, labels, transfer)  # transfer after registry


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

    for group in GROUPS:
        group.register(sub, add)
    return parser


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
