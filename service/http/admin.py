"""Admin routes: tokens and daemon status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from service import __version__
from service.contract import TokenIssue
from service.contract.responses import IssuedToken, JobRun, RevokedToken, Status, TokenList
from service.http.deps import Admin, CommandsDep, DaemonDep
from service.http.errors import ApiError, error_responses

router = APIRouter(prefix="/v1", tags=["admin"],
                   responses=error_responses(401, 403, 413, 422))


@router.post("/tokens", status_code=201, response_model=IssuedToken,
             responses=error_responses(400, 503),
             summary="Issue an API token (shown once)")
def issue_token(body: TokenIssue, commands: CommandsDep, who: Admin) -> dict[str, Any]:
    """Append token.issued (hash only) and return the token; it cannot be shown again."""
    token_id, token = commands.issue_token(body.role, body.name, who.actor)
    return {"token_id": token_id, "role": body.role, "name": body.name, "token": token}


@router.get("/tokens", response_model=TokenList, summary="List tokens (never the secrets)")
def list_tokens(daemon: DaemonDep, _: Admin) -> dict[str, Any]:
    """Return each token's id, role, name and whether it is revoked."""
    return {"tokens": [
        {"token_id": t.token_id, "role": t.role, "name": t.name, "revoked": t.revoked}
        for t in sorted(daemon.live.tokens.values(), key=lambda t: t.token_id)
    ]}


@router.delete("/tokens/{token_id}", response_model=RevokedToken,
               responses=error_responses(404, 409, 503),
               summary="Revoke a token")
def revoke_token(token_id: str, commands: CommandsDep, who: Admin) -> dict[str, Any]:
    """Append token.revoked; refuses to revoke the last active admin token."""
    commands.revoke_token(token_id, who.actor)
    return {"token_id": token_id, "revoked": True}


@router.get("/status", response_model=Status, summary="Daemon status")
def status(daemon: DaemonDep, _: Admin) -> dict[str, Any]:
    """Return version, backend, log head, projection lag, queue depth and counts."""
    head, lag = daemon.queries.head_and_lag()
    return {
        "version": __version__,
        "backend": "sqlite" if daemon.settings.is_sqlite else "postgresql",
        "log_position": head,
        "projection_lag": lag,
        "writer_queue_depth": daemon.writer.queue_depth,
        "prompts": len(daemon.live.registry.prompts),
        "versions": len(daemon.live.registry.versions),
        "uptime_s": round(daemon.clock() - daemon.started_at, 3),
    }


@router.post("/jobs/{job}", response_model=JobRun, responses=error_responses(404, 409, 500),
             summary="Run a scheduled job now (mine, improve, canary)")
def run_job(job: str, daemon: DaemonDep, _: Admin) -> dict[str, Any]:
    """Run one job immediately on this process (it must lead); returns whether it succeeded."""
    scheduler = daemon.scheduler
    if job not in scheduler.jobs:
        raise ApiError(404, "not_found",
                       f"unknown job {job!r}; jobs are {', '.join(sorted(scheduler.jobs))}")
    if not scheduler.is_leader:
        scheduler.check_leadership()
    if not scheduler.is_leader:
        raise ApiError(409, "conflict", "another promptd process leads the scheduler")
    ok = scheduler.run_job(job)
    if not ok:
        raise ApiError(500, "job_failed", f"job {job} failed; see the daemon log")
    return {"job": job, "ok": True, "result": scheduler.last_result.get(job)}
