"""The ``promptd`` parser and entry point: each command group registers its own commands."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from service import __version__
from service.cli import database, labels, loop, registry, report, rollout, transfer
from service.cli.base import CommandError, Handler

GROUPS = (database, registry, rollout, loop, labels, transfer, report)  # transfer after registry


class Parser(argparse.ArgumentParser):
    """An argument parser whose every error is one line naming the command at fault."""

    def error(self, message: str) -> NoReturn:
        """Print ``promptd VERB: message`` on one line and exit with status 2."""
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for every ``promptd`` command."""
    common = Parser(add_help=False)
    common.add_argument("--url", default=None,
                        help="daemon URL (env PROMPTD_URL, default http://127.0.0.1:8077)")
    common.add_argument("--token", default=None,
                        help="admin token (env PROMPTD_TOKEN, else the file PROMPTD_TOKEN_FILE "
                             "names, else var/admin.token here or in a folder above)")
    common.add_argument("--json", action="store_true", help="print JSON for scripts")

    parser = Parser(prog="promptd", description=(
        "promptd: event-sourced daemon that keeps improving the prompts of LLM agents."))
    parser.add_argument("--version", action="version", version=f"promptd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Handler, help_: str, parent: Any = sub,
            **kwargs: Any) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = parent.add_parser(name, parents=[common], help=help_,
                                                       description=help_, **kwargs)
        # Errors name the verb the person typed ("promptd token revoke"), not its group.
        p.set_defaults(handler=handler, verb=p.prog)
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
        print(f"{args.verb}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
