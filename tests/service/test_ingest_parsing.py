"""Ingest parses the raw body once: NULs are still refused, defaults are not stored."""

from __future__ import annotations

import json

from tests.support import LiveDaemon


def _stored_payloads(live: LiveDaemon) -> list[dict[str, object]]:
    page = live.client().get("/v1/events", params={"type": ["execution", "correction"],
                                                   "limit": 100}).json()
    return [e["payload"] for e in page["events"]]


def test_a_nul_escape_is_refused_on_every_path(live: LiveDaemon) -> None:
    live.create_prompt()
    agent = live.client(live.issue("agent"))
    clean = {"type": "execution", "prompt": "support/triage", "version": 1, "success": True}
    # The first request of a route goes through FastAPI; later ones through RequestGuard's
    # shortcut, which validates the raw text and skips the NUL check without a \u0000 escape.
    assert agent.post("/v1/executions", json=clean).status_code == 200
    assert agent.post("/v1/executions", json=clean).status_code == 200
    for path, body in (("/v1/executions", {**clean, "arm": "c1\x00"}),
                       ("/v1/events", {"events": [clean, {**clean, "model": "m\x00"}]})):
        text = json.dumps(body)
        assert "\\u0000" in text
        for _ in range(2):
            r = agent.post(path, content=text, headers={"Content-Type": "application/json"})
            assert r.status_code == 422, r.text
            assert "NUL" in r.text
    assert len(_stored_payloads(live)) == 2  # the two clean ones only
