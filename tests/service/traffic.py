"""Simulated agent traffic for service tests: resolve, then report outcomes by version."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import httpx

from service.contract.ids import uuid7


def run_traffic(agent: httpx.Client, prompt: str, n: int, success_by_version: Mapping[int, float],
                *, seed: int = 0, subjects: int = 10_000, batch: int = 100,
                extra: Mapping[str, Any] | None = None) -> dict[int, int]:
    """Resolve ``n`` times and post an execution each; return executions per version."""
    rng = random.Random(seed)
    per_version: dict[int, int] = {}
    events: list[dict[str, Any]] = []
    for _ in range(n):
        subject = f"user-{rng.randrange(subjects)}"
        r = agent.get(f"/v1/prompts/{prompt}/resolve", params={"subject": subject})
        r.raise_for_status()
        res = r.json()
        version = res["version"]
        per_version[version] = per_version.get(version, 0) + 1
        events.append({
            "type": "execution", "event_id": uuid7(), "prompt": prompt, "version": version,
            "deployment": res["deployment"], "arm": res["arm"], "subject": subject,
            "success": rng.random() < success_by_version.get(version, 0.8),
            "latency_ms": rng.lognormvariate(6.0, 0.3), "cost_usd": 0.001, **(extra or {}),
        })
        if len(events) >= batch:
            agent.post("/v1/events", json={"events": events}).raise_for_status()
            events = []
    if events:
        agent.post("/v1/events", json={"events": events}).raise_for_status()
    return per_version
