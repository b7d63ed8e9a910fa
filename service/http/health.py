"""Liveness, readiness and the Prometheus endpoint (no token needed)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from service.contract.responses import Health, Ready
from service.http.deps import DaemonDep
from service.http.errors import error_body, error_responses

router = APIRouter(tags=["health"])
METRICS_RESPONSE: dict[int | str, dict[str, object]] = {200: {
    "description": "Every metric in the Prometheus text format (see ops/METRICS.md)",
    "content": {"text/plain": {"schema": {"type": "string"}, "example": (
        "# HELP promptd_log_position Position of the newest event in the log\n"
        "# TYPE promptd_log_position gauge\npromptd_log_position 1042.0\n")}}}}


@router.get("/healthz", response_model=Health, summary="The process is alive")
def healthz() -> dict[str, str]:
    """Return ok while the process can answer."""
    return {"status": "ok"}


# Documented, not validated: the 503 answer is the error shape, set on the same route.
@router.get("/readyz", response_model=None,
            responses={200: {"model": Ready, "description": "Ready"}, **error_responses(503)},
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


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses=METRICS_RESPONSE)
def metrics(daemon: DaemonDep) -> Response:
    """Return every metric in the Prometheus text format."""
    daemon.metrics.writer_queue_depth.set(daemon.writer.queue_depth)
    return Response(generate_latest(daemon.metrics.registry), media_type=CONTENT_TYPE_LATEST)
