"""SDK logging through the standard ``logging`` module, as httpx does.

An agent configures logging its own way; the SDK must not impose structlog on it. Each line
is an event name and ``key=value`` fields; the fields also ride on the record as
``record.promptd`` for structured handlers.
"""

from __future__ import annotations

import logging
from typing import Any


class EventLogger:
    """Logs ``event key=value ...`` lines to a standard logger."""

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def _log(self, level: int, event: str, fields: dict[str, Any]) -> None:
        if self._logger.isEnabledFor(level):
            text = " ".join(f"{k}={v}" for k, v in fields.items())
            self._logger.log(level, "%s %s", event, text,
                             extra={"promptd": {"event": event, **fields}})

    def info(self, event: str, **fields: Any) -> None:
        """Log at INFO."""
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        """Log at WARNING."""
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        """Log at ERROR."""
        self._log(logging.ERROR, event, fields)
