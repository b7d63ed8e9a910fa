"""What every command module shares: the handler type, the admin client, templates."""

from __future__ import annotations

import argparse
import json
import math
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
    raise CommandError("give the template with --template TEXT or --template-file PATH "
                       "(or a chat prompt's messages with --messages-file PATH)")


def _jsonable(value: Any, where: str) -> Any:
    """Return ``value`` if it is plain JSON; CommandError naming where it is not."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CommandError(f"{where}: {value} is not a JSON number")
        return value
    if isinstance(value, list):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise CommandError(f"{where}: key {key!r} is not a string")
        return {k: _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    raise CommandError(f"{where}: a {type(value).__name__} is not JSON (quote it in YAML)")


def read_document(path: str) -> Any:
    """Return the JSON or YAML document in ``path`` (- for stdin) as plain JSON values.

    A name ending in .json is read as JSON, anything else as YAML (which JSON also is);
    YAML values that JSON has no type for (dates, ...) are refused, naming where they are.
    """
    if path == "-":
        text = sys.stdin.read()
    else:
        file = Path(path)
        if not file.is_file():
            raise CommandError(f"file {file} does not exist")
        text = file.read_text()
    if path.endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path}: not JSON: {exc}") from exc
    else:
        import yaml  # deferred: only import/export and --messages-file read YAML

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise CommandError(f"{path}: not YAML: {exc}") from exc
    return _jsonable(data, path)


def read_content(args: argparse.Namespace) -> dict[str, Any]:
    """Return a version's content: a template, or --messages-file; and --config-file.

    The messages file holds the list of messages, or an object with ``messages`` (and
    ``config``); JSON or YAML.
    """
    out: dict[str, Any] = {}
    if getattr(args, "messages_file", None) is not None:
        data = read_document(args.messages_file)
        if isinstance(data, dict):
            out["messages"] = data.get("messages")
            if data.get("config") is not None:
                out["config"] = data["config"]
        else:
            out["messages"] = data
    else:
        out["template"] = read_template(args)
    if getattr(args, "config_file", None) is not None:
        out["config"] = read_document(args.config_file)
    return out


def add_content_arguments(p: argparse.ArgumentParser) -> None:
    """Add --template, --template-file, --messages-file and --config-file to a command."""
    p.add_argument("--template")
    p.add_argument("--template-file", help="path, or - for stdin")
    p.add_argument("--messages-file", help="a chat prompt: its messages as JSON or YAML")
    p.add_argument("--config-file", help="the model config (JSON or YAML object)")


__all__ = ["AddCommand", "CommandError", "Handler", "add_content_arguments", "client",
           "read_content", "read_document", "read_template"]
