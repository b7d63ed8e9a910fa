"""`promptd candidates`: the offline gate's column and why a rejected candidate was rejected."""

from __future__ import annotations

from pathlib import Path

from tests.improver.llm_stub import serve_llm_stub
from tests.service.test_cli import run
from tests.service.test_loop_jobs import _traffic_with_corrections
from tests.support import live_daemon

PROMPT = "support/triage"
LOOP = {"improve_min_pattern_size": 3, "improve_min_pattern_share": 0.0,
        "improve_cooldown_s": 0.0}


def _row(out: str, version: int) -> str:
    return next(line for line in out.splitlines()
                if line.startswith(f"{PROMPT}  v{version} "))


def test_candidates_show_the_gate_result_and_each_rejection_with_its_reason(
        tmp_path: Path) -> None:
    with serve_llm_stub() as stub, live_daemon(
            tmp_path, **LOOP, llm_base_url=stub.base_url, llm_model="stub-model",
            gate_cases=8) as live:
        live.create_prompt(PROMPT, "Triage {{ ticket }}")
        admin = live.client()
        _traffic_with_corrections(live, PROMPT)
        admin.post("/v1/jobs/mine").raise_for_status()
        admin.post("/v1/jobs/improve").raise_for_status()
        cands = admin.get(f"/v1/prompts/{PROMPT}/candidates").json()["candidates"]
        history = admin.get(f"/v1/prompts/{PROMPT}/history").json()["history"]
        out = run(live, "candidates", PROMPT)
    assert out.returncode == 0, out.stderr
    rejected = [c for c in cands if c["status"] == "rejected"]
    assert rejected and len(rejected) < len(cands)  # the stub's judge passes some, not all
    for c in cands:
        g = c["gate"]
        verdict = "passed" if g["passed"] else "failed"
        assert f"{g['wins']}/{g['losses']}/{g['ties']} p={g['p_value']:.2g} {verdict}" in (
            _row(out.stdout, c["version"]))
    reasons = {h["version"]: h["reason"] for h in history if h["type"] == "candidate.rejected"}
    for c in rejected:
        assert f"rejected {PROMPT} v{c['version']}: {reasons[c['version']]}" in out.stdout
    for c in cands:
        if c["status"] != "rejected":
            assert f"rejected {PROMPT} v{c['version']}:" not in out.stdout


def test_candidates_without_an_offline_gate_show_a_dash(tmp_path: Path) -> None:
    with live_daemon(tmp_path, **LOOP) as live:
        live.create_prompt(PROMPT, "Triage {{ ticket }}")
        admin = live.client()
        _traffic_with_corrections(live, PROMPT)
        admin.post("/v1/jobs/mine").raise_for_status()
        admin.post("/v1/jobs/improve").raise_for_status()
        cands = admin.get(f"/v1/prompts/{PROMPT}/candidates").json()["candidates"]
        out = run(live, "candidates")
    assert cands and all(c["gate"] is None for c in cands)
    for c in cands:
        row = _row(out.stdout, c["version"])
        assert f"  {c['status']}  -  " in row
    assert "rejected" not in out.stdout and "gate: an LLM" not in out.stdout
