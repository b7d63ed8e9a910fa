"""Commands that work on the database itself: serve, replay, backup, restore."""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from typing import Any

from service.cli.base import AddCommand, CommandError, Handler
from service.cli.output import emit, table


def _explained(exc: Exception) -> str | None:
    """Return the one-line explanation of a startup failure we know, or None (a bug)."""
    from pydantic import ValidationError

    from service.store.backup import BackupError
    from service.store.identity import DatabaseRefused

    if isinstance(exc, ValidationError):
        problems = [f"PROMPTD_{'_'.join(str(p) for p in e['loc']).upper()}: "
                    f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors()]
        return "invalid settings: " + "; ".join(problems)
    if isinstance(exc, DatabaseRefused | BackupError | FileNotFoundError):
        return str(exc)
    return None


def _one_line(handler: Handler) -> Handler:
    """Wrap a command so known startup failures end in one line, tracebacks only on --debug."""
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except Exception as exc:
            explained = None if args.debug else _explained(exc)
            if explained is None:
                raise
            raise CommandError(explained) from None

    run.__doc__ = handler.__doc__
    return run


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the daemon until SIGINT/SIGTERM."""
    from service.runtime.logs import configure_logging
    from service.runtime.settings import Settings
    from service.server import build, run

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port),
                                   ("database_url", args.database_url)) if v is not None}
    settings = Settings(**overrides)
    configure_logging(settings.log_level, settings.log_format)
    service = build(settings)
    # Everything imported and built so far lives as long as the process (~200k objects with
    # scipy and scikit-learn): frozen, a full cyclic collection no longer rescans them. It
    # took 200-400 ms on 2 busy cores, paused the event loop and was the open-loop p99.
    gc.freeze()
    print(f"promptd serving http://{settings.host}:{settings.port} "
          f"(log: {settings.database_url}; docs: /docs; metrics: /metrics)", file=sys.stderr)
    run(service)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    """Rebuild every projection from position 0 and compare it with the live database."""
    from service.projections.replay import replay
    from service.runtime.settings import Settings

    url = args.database_url or Settings().database_url
    started = time.monotonic()
    last = [started]

    def progress(position: int, upto: int) -> None:
        now = time.monotonic()
        if args.json or (now - last[0] < 0.5 and position < upto):
            return
        last[0] = now
        print("  " + replay_progress(position, upto, now - started), file=sys.stderr)

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


def replay_progress(position: int, upto: int, elapsed_s: float) -> str:
    """Return one progress line of a replay: done, events/s so far and the time left."""
    # Positions are dense, so the position replayed to is the number of events replayed.
    rate = position / elapsed_s if elapsed_s > 0 else 0.0
    left = (upto - position) / rate if rate > 0 else float("inf")
    share = 100.0 * position / upto if upto else 100.0
    eta = "done" if position >= upto else (
        f"ETA {left:.0f} s" if left != float("inf") else "ETA unknown")
    return (f"replayed {position:,}/{upto:,} events ({share:.0f}%), "
            f"{rate:,.0f} events/s, {eta}")


def _url(args: argparse.Namespace) -> str:
    from service.runtime.settings import Settings

    return str(args.database_url or Settings().database_url)


def _print(args: argparse.Namespace, verb: str, report: Any, where: str) -> None:
    if args.json:
        print(json.dumps({"path": str(report.path), "events": report.events,
                          "position": report.position, "bytes": report.size_bytes}))
    else:
        print(f"{verb} {report.events} events (up to position {report.position}, "
              f"{report.size_bytes} bytes) {where}")


def cmd_backup(args: argparse.Namespace) -> int:
    """Copy the SQLite log to PATH while the daemon keeps running."""
    from service.store.backup import backup

    report = backup(_url(args), args.path)
    _print(args, "backed up", report, f"to {report.path}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Load a backup file into an empty database (stop the daemon first)."""
    from service.projections import Projector, default_projections
    from service.store.backup import restore

    url = _url(args)
    report = restore(args.path, url, folder=Projector(default_projections()),
                     force=args.force, create=args.create)
    _print(args, "restored", report, f"from {report.path}")
    return 0


def _settings_help() -> str:
    # The admin commands work with the SDK alone (httpx); the daemon needs the server extra.
    try:
        from service.runtime.settings import settings_help
    except ImportError:
        return "the daemon needs the server extra: pip install 'promptd[server]'"
    return settings_help()


_DEBUG_HELP = "show the traceback of a failure instead of one line"


def register(sub: Any, add: AddCommand) -> None:
    """Add serve, replay, backup and restore."""
    p = add("serve", _one_line(cmd_serve), "run the daemon", epilog=_settings_help(),
            formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--database-url", default=None)
    p.add_argument("--debug", action="store_true", help=_DEBUG_HELP)

    p = add("replay", _one_line(cmd_replay),
            "rebuild projections from position 0 and compare with live")
    p.add_argument("--database-url", default=None, help="live database (default: settings)")
    p.add_argument("--into", default=None, help="rebuild into this URL (default: temp SQLite)")
    p.add_argument("--debug", action="store_true", help=_DEBUG_HELP)

    p = add("backup", _one_line(cmd_backup), "copy the SQLite log to PATH while the daemon runs")
    p.add_argument("path")
    p.add_argument("--database-url", default=None, help="live database (default: settings)")
    p.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    p = add("restore", _one_line(cmd_restore),
            "load a backup into an empty database (SQLite or PostgreSQL); stop the daemon first")
    p.add_argument("path")
    p.add_argument("--database-url", default=None, help="target database (default: settings)")
    p.add_argument("--force", action="store_true",
                   help="replace a SQLite log that already holds events")
    p.add_argument("--create", action="store_true",
                   help="restore into a SQLite file that does not exist yet (else refused: "
                   "a relative URL run from the wrong folder would name a new file)")
    p.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
