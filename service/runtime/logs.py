"""structlog setup: JSON lines for machines, a readable console for people."""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

LogFormat = Literal["auto", "json", "console"]


def configure_logging(level: str = "info", fmt: LogFormat = "auto") -> None:
    """Configure structlog and stdlib logging once for the process."""
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    renderer: structlog.types.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    numeric = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # uvicorn and APScheduler log through stdlib; keep their access logs off (we log requests).
    logging.basicConfig(level=numeric, stream=sys.stderr,
                        format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("uvicorn.access").disabled = True
    # APScheduler warns on every skipped overlapping run; our job metrics already show it.
    logging.getLogger("apscheduler").setLevel(max(numeric, logging.ERROR))
