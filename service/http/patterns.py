"""Mined failure patterns of a prompt (read side)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from service.contract.rollouts import PatternsSnapshot
from service.http.deps import Admin, DaemonDep
from service.http.errors import error_responses
from service.http.prompts import NamePath, _prompt

router = APIRouter(prefix="/v1/prompts", tags=["patterns"],
                   responses=error_responses(401, 403, 404, 413, 422))


@router.get("/{name:path}/patterns", response_model=PatternsSnapshot,
            summary="Current failure patterns, ranked")
def get_patterns(name: NamePath, daemon: DaemonDep, _: Admin) -> dict[str, Any]:
    """Return the latest mining snapshot: ranked patterns, resolved ones and anomalies."""
    _prompt(daemon, name)
    snap = daemon.queries.snapshot(name)
    if snap is None:
        return {"prompt": name, "mined_at": None, "patterns": [], "resolved": [],
                "anomalies": []}
    return {
        "prompt": name, "mined_at": snap["mined_at"], "position": snap["position"],
        "patterns": [_public(p.to_dict()) for p in snap["patterns"]],
        "resolved": [_public(p.to_dict()) for p in snap["resolved"]],
        "anomalies": snap["anomalies"],
        "share_window": snap["share_window"], "counted_failures": snap["counted_failures"],
    }


def _public(pattern: dict[str, Any]) -> dict[str, Any]:
    # The centroid is for identity matching between runs, not for people.
    return {k: v for k, v in pattern.items() if k != "centroid"}
