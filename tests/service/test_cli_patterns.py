"""`promptd patterns` on a messy corpus mined by a real daemon, read by the real CLI."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from analytics.mining.messy import generate_messy_corpus
from service.cli.loop import window_end
from service.contract.ids import uuid7
from tests.service.test_cli import run
from tests.support import LiveDaemon, live_daemon

PROMPT = "support/triage"
WINDOW_S = 3.0


@pytest.fixture
def mined(tmp_path: Path) -> Iterator[tuple[LiveDaemon, int]]:
    """A daemon that mined a messy corpus; and how many corrections it holds."""
    with live_daemon(tmp_path, mining_window_s=WINDOW_S, mining_windows=6) as live:
        live.create_prompt(PROMPT, "Answer {{ question }} ({{ locale }})")
        corpus = generate_messy_corpus(seed=3, n_records=300, now=time.time())
        events: list[dict[str, Any]] = []
        corrections = 0
        for r in corpus.records:
            eid = uuid7()
            events.append({"type": "execution", "event_id": eid, "prompt": PROMPT, "version": 1,
                           "success": False, "latency_ms": 100.0, "input_text": r.input_text,
                           "output_text": r.output_text, "variables": dict(r.variables)})
            if r.kind == "correction":
                corrections += 1
                events.append({"type": "correction", "execution_id": eid, "prompt": PROMPT,
                               "version": 1, "category": r.category, "reason": r.reason,
                               "corrected_output": r.corrected_output, "severity": "medium"})
        for _ in range(40):  # typed failures: pattern records that are not corrections
            events.append({"type": "execution", "event_id": uuid7(), "prompt": PROMPT,
                           "version": 1, "success": False, "latency_ms": 100.0,
                           "error_type": "upstream_timeout", "variables": {"locale": "en"}})
        admin = live.client()
        admin.post("/v1/events", json={"events": events}).raise_for_status()
        assert admin.post("/v1/jobs/mine").json()["result"] == 1
        yield live, corrections


def _row(out: str, pattern_id: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(pattern_id[:10]))


def _cell(out: str, pattern_id: str, column: str) -> str:
    """Return one cell of the patterns table, cut where the dashes under its header are."""
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("id  "))
    spans, at = {}, 0
    for name, dashes in zip(lines[header].split(), lines[header + 1].split(), strict=True):
        spans[name] = (at, at + len(dashes))
        at += len(dashes) + 2
    start, end = spans[column]
    return _row(out, pattern_id)[start:end].strip()


def test_patterns_shows_the_share_window_statements_noise_context_and_corrections(
        mined: tuple[LiveDaemon, int]) -> None:
    live, corrections = mined
    snap = live.client().get(f"/v1/prompts/{PROMPT}/patterns").json()
    out = run(live, "patterns", PROMPT)
    assert out.returncode == 0, out.stderr
    window = snap["share_window"]
    assert window["records"] == corrections + 40  # corrections and typed failures, one window
    assert (f"shares over the window ending {window_end(window['end'], time.time())}, "
            f"{corrections + 40} records") in out.stdout
    assert "not the latest window" not in out.stdout
    noise = [p for p in snap["patterns"] if p["noise"]]
    clean = [p for p in snap["patterns"] if p["statements"]]
    located = [p for p in snap["patterns"] if p["context"]]
    assert noise and clean and located  # the messy corpus has each kind
    assert any(p["corrections"] < p["size"] for p in snap["patterns"])  # the typed failures
    for p in snap["patterns"]:
        assert _cell(out.stdout, p["pattern_id"], "corrections") == str(p["corrections"])
        assert _cell(out.stdout, p["pattern_id"], "size") == str(p["size"])
    for p in clean:
        row = _row(out.stdout, p["pattern_id"])
        assert _cell(out.stdout, p["pattern_id"], "statement") == p["statements"][0][1][:50].strip()
        assert row.endswith("yes")
    for p in noise:
        assert _row(out.stdout, p["pattern_id"]).endswith("none: noise")
        assert f"noise, gets no rule: {p['pattern_id'][:10]} {p['noise']}" in out.stdout
    for p in located:
        c = p["context"]
        assert f"{c['variable']}={','.join(c['values'])}" in _row(out.stdout, p["pattern_id"])
        assert f"mostly {c['variable']} in {', '.join(c['values'])}" in out.stdout
    assert f"{snap['counted_failures']} failed executions without an error type" in out.stdout
    assert json.loads(run(live, "patterns", PROMPT, "--json").stdout) == snap


def test_patterns_says_when_shares_come_from_an_older_window(
        mined: tuple[LiveDaemon, int]) -> None:
    live, corrections = mined
    time.sleep(WINDOW_S + 1.0)  # the latest window now holds nothing to mine
    admin = live.client()
    admin.post("/v1/events", json={"events": [{  # news for the miner, in no pattern
        "type": "execution", "event_id": uuid7(), "prompt": PROMPT, "version": 1,
        "success": False, "latency_ms": 1.0}]}).raise_for_status()
    assert admin.post("/v1/jobs/mine").json()["result"] == 1
    window = admin.get(f"/v1/prompts/{PROMPT}/patterns").json()["share_window"]
    out = run(live, "patterns", PROMPT)
    assert window["records"] == corrections + 40 and not window["is_latest"]
    assert (f"shares over the window ending {window_end(window['end'], time.time())}, "
            f"{corrections + 40} records\n(not the latest window") in out.stdout
