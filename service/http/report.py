"""The report of every prompt over a window (``promptd report``)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Query

from service.contract.reports import Report
from service.http.deps import Admin, DaemonDep
from service.http.errors import ApiError, error_responses, refuse_nul
from service.http.prompts import _prompt

router = APIRouter(prefix="/v1", tags=["report"], responses=error_responses(401, 403, 422))
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw]?)$")


def duration_s(text: str) -> float:
    """Return seconds from a duration like 7d, 12h, 30m, 90s or 3600."""
    match = _DURATION.match(text.strip())
    if match is None or float(match.group(1)) <= 0:
        message = f"expected a duration such as 7d, 12h, 30m or 3600, got {text!r}"
        raise ApiError(422, "validation_error", f"invalid request: since: {message}",
                       [{"field": "since", "message": message}])
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


@router.get("/report", response_model=Report, responses=error_responses(404),
            summary="Every prompt over a window: rates, shipped versions, decisions, patterns")
def get_report(daemon: DaemonDep, _: Admin,
               since: str = Query("7d", max_length=32,
                                  description="how far back: 7d, 12h, 30m, or seconds"),
               prompt: str | None = Query(None, max_length=128,
                                          description="only this prompt")) -> dict[str, Any]:
    """Return each prompt's success, correction and error rates per version with intervals,
    cost per successful execution, versions shipped, decisions and top failure patterns."""
    refuse_nul(prompt=prompt)
    if prompt is not None:
        _prompt(daemon, prompt)
    until = daemon.clock()
    report = daemon.queries.report(since=until - duration_s(since), until=until, prompt=prompt)
    tokens = daemon.live.tokens
    for entry in (e for p in report["prompts"] for e in (*p["shipped"], *p["deployments_ended"])):
        kind, _, token_id = entry["actor"].partition(":")
        record = tokens.get(token_id) if kind == "token" else None
        entry["actor_name"] = (record.name or None) if record is not None else None
    return report
