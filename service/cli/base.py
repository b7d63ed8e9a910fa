"""What every command module shares: the handler type, the admin client, templates."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from service.sdk import AdminClient
from service.sdk import AdminError as CommandError

Handler = Callable[[argparse.Namespace], int]


class AddCommand(Protocol):
    """Registers one command: ``add(name, handler, help, parent=None, **parser_kwargs)``."""

    def __call__(self, name: str, handler: Handler, help_: str, parent: Any = ...,
                 **kwargs: Any) -> argparse.ArgumentParser: ...


def client(args: argparse.Namespace) -> AdminClient:
    """Return an admin client for the daemon the arguments name."""
    return AdminClient(args.url, args.token)


def read_template(args: argparse.Namespace) -> str:
    """Return the template given by --template or --template-file (- for stdin)."""
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


__all__ = ["AddCommand", "CommandError", "Handler", "client", "read_template"]
