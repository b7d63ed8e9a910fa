"""The ``promptd`` command line: run the daemon, and administer it over HTTP."""

from .commands import main

__all__ = ["main"]
