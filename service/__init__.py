"""promptd's imperative shell: HTTP API, event log, projections, scheduler, CLI, SDK."""

__version__ = "0.1.0"
