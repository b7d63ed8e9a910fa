"""`promptd replay`: projections rebuilt from position 0 equal the live ones."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from service.projections.replay import replay
from tests.support import LiveDaemon


def _traffic(live: LiveDaemon) -> None:
    live.create_prompt("support/triage")
    live.create_prompt("sales/qualify", "Qualify {{ lead }}")
    admin = live.client()
    admin.post("/v1/prompts/support/triage/versions",
               json={"template": "v2 {{ ticket }} {{ customer }}", "make_production": True})
    agent = live.client(live.issue("agent"))
    events = []
    for i in range(300):
        events.append({"type": "execution", "event_id": f"evt-replay-{i:05d}",
                       "prompt": "support/triage" if i % 3 else "sales/qualify",
                       "version": 2 if i % 3 else 1, "success": i % 4 != 0,
                       "latency_ms": 100.0 + i * 0.37, "cost_usd": 0.001 * (i % 7),
                       "error_type": "timeout" if i % 11 == 0 else None})
    for i in range(0, 300, 7):
        events.append({"type": "correction", "execution_id": f"evt-replay-{i:05d}",
                       "prompt": "sales/qualify" if i % 3 == 0 else "support/triage",
                       "version": 1 if i % 3 == 0 else 2, "category": "tone",
                       "reason": "too curt"})
    for start in range(0, len(events), 50):
        assert agent.post("/v1/events", json={"events": events[start:start + 50]}).is_success


def test_replay_of_a_live_database_reports_equality(live: LiveDaemon) -> None:
    _traffic(live)
    report = replay(live.settings.database_url)
    assert report.equal, [t for t in report.tables if not t.equal]
    assert report.events == report.position > 300
    by_table = {t.table: t for t in report.tables}
    assert by_table["version_counts"].live_rows == 2  # triage v2, qualify v1
    assert by_table["tokens"].live_rows == 2


def test_replay_detects_a_projection_that_drifted(live: LiveDaemon, tmp_path: Path) -> None:
    _traffic(live)
    with live.daemon.engine.begin() as conn:  # simulate a buggy fold / manual tampering
        conn.execute(text("UPDATE version_counts SET successes = successes + 1 "
                          "WHERE prompt = 'sales/qualify'"))
    report = replay(live.settings.database_url, into_url=f"sqlite:///{tmp_path / 'r.db'}")
    assert not report.equal
    assert [t.table for t in report.tables if not t.equal] == ["version_counts"]
