"""What every command module shares: the handler type, the admin client, templates."""

from __future__ import annotations

import argparse
import os
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


TOKEN_FILE = Path("var") / "admin.token"  # where `promptd serve` writes it, from its folder


def find_token(given: str | None = None) -> str:
    """Return the admin token: --token, PROMPTD_TOKEN, PROMPTD_TOKEN_FILE, else the nearest
    ``var/admin.token`` in this folder or one above it (as git finds ``.git``).

    Raises ``CommandError`` saying where it looked when there is none.
    """
    token = given or os.environ.get("PROMPTD_TOKEN")
    if token:
        return token.strip()
    named = os.environ.get("PROMPTD_TOKEN_FILE")
    if named:
        path = Path(named).expanduser().resolve()
        if not path.is_file():
            raise CommandError(f"PROMPTD_TOKEN_FILE={named}: no such file ({path})")
        return _read_token(path)
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / TOKEN_FILE).is_file():
            return _read_token(folder / TOKEN_FILE)
    raise CommandError(
        f"no admin token: looked for {TOKEN_FILE} in {here} and every folder above it; "
        "pass --token, or set PROMPTD_TOKEN or PROMPTD_TOKEN_FILE (the daemon writes the "
        "file where its PROMPTD_TOKEN_FILE says, var/admin.token by default)")


def _read_token(path: Path) -> str:
    token = path.read_text().strip()
    if not token:
        raise CommandError(f"the token file {path} is empty")
    return token


def client(args: argparse.Namespace) -> AdminClient:
    """Return an admin client for the daemon the arguments name."""
    return AdminClient(args.url, find_token(args.token))


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


__all__ = ["AddCommand", "CommandError", "Handler", "client", "find_token", "read_template"]
