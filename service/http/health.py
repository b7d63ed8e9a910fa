"""Liveness, readiness and the Prometheus endpoint (no token needed)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.http.deps import DaemonDep
from service.http.errors import error_body, error_responses

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    """Return ok while the process can answer."""
    return {"status": "ok"}


@router.get("/readyz", responses=error_responses(503),
            summary="The database is reachable and read models are caught up")
def readyz(daemon: DaemonDep, response: Response) -> dict[str, object]:
    """Return ready, or 503 with the reason."""
    failure = daemon.writer.failure
    if failure is not None:  # cleared by the next commit or probe that succeeds
        response.status_code = 503
        return error_body("not_ready", f"appends are failing: {failure}")
    try:
        lag = daemon.queries.projection_lag()
    except Exception as exc:  # any database failure means "not ready", never a 500
        response.status_code = 503
        return error_body("not_ready", f"database unreachable: {exc.__class__.__name__}")
    if lag > 0:
        response.status_code = 503
        return error_body("not_ready", f"projections are {lag} events behind the log")
    return {"status": "ready", "projection_lag": 0}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(daemon: DaemonDep) -> Response:
    """Return every metric in the Prometheus text format."""
    daemon.metrics.writer_queue_depth.set(daemon.writer.queue_depth)
    return Response(generate_latest(daemon.metrics.registry), media_type=CONTENT_TYPE_LATEST)
