"""The closed loop end to end: a simulated fleet, a real daemon process, nothing mocked.

From the baseline, the loop must ship at least one machine-written improvement through a
canary and end clearly above the baseline, for the text prompt and for the chat prompt
alike; a harmful version an admin deploys by hand must be rolled back automatically; every
event the fleet recorded must be in the log.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from service.sdk import AdminClient
from service.simulation.demo import (
    BASE_TEMPLATES,
    CHAT_PROMPT,
    GUARDED_PROMPT,
    LOOP_PROMPT,
    PROMPTS,
    base_text,
    deploy_harmful_edit,
    ensure_prompts,
    fast_env,
)
from service.simulation.fleet import Fleet, FleetConfig
from service.simulation.world import World
from tests.support import start_process


@pytest.mark.slow
def test_the_loop_ships_an_improvement_and_catches_a_harmful_edit(tmp_path: Path) -> None:
    proc = start_process(tmp_path, extra_env={**fast_env(), "PROMPTD_SCHEDULER_ENABLED": "true"})
    try:
        admin = AdminClient(proc.url, proc.admin_token)
        ensure_prompts(admin)
        world = World(seed=11)
        baseline = world.expected_success(BASE_TEMPLATES[LOOP_PROMPT])
        chat_baseline = world.expected_success(base_text(CHAT_PROMPT))
        fleet = Fleet(proc.url, proc.admin_token, world,
                      FleetConfig(prompts=PROMPTS, agents=4, rate_per_s=120, seed=11))
        # Deployed before any traffic, so the improver cannot claim the prompt first.
        harmful = deploy_harmful_edit(admin)
        runner = threading.Thread(target=fleet.run, kwargs={"duration_s": 240}, daemon=True)
        runner.start()

        def deployments() -> list[dict]:
            return admin.get("/v1/deployments", params={"all": "true"})["deployments"]

        deadline = time.monotonic() + 230
        shipped = caught = False
        while time.monotonic() < deadline and not (shipped and caught):
            time.sleep(3)
            deps = deployments()
            shipped = all(any(d["prompt"] == prompt and d["phase"] == "promoted"
                              and d["machine_written"] for d in deps)
                          for prompt in (LOOP_PROMPT, CHAT_PROMPT))
            caught = any(d["deployment_id"] == harmful and d["phase"] == "rolled_back"
                         for d in deps)
        # Let the improved version serve a full window before judging the final rate.
        window_end = time.monotonic() + 25
        while time.monotonic() < window_end and runner.is_alive():
            time.sleep(1)
        fleet.stop()
        runner.join(30)
        fleet.close()

        assert shipped, "no machine-written improvement was promoted for both prompts"
        assert caught, "the hand-deployed harmful edit was not rolled back"
        bad = next(d for d in deployments() if d["deployment_id"] == harmful)
        assert "harm" in bad["outcome_reason"] and not bad["machine_written"]
        final = fleet.stats.recent_success(LOOP_PROMPT)
        assert final is not None and final > baseline + 0.08, (baseline, final)
        chat_final = fleet.stats.recent_success(CHAT_PROMPT)
        assert chat_final is not None and chat_final > chat_baseline + 0.08, (
            chat_baseline, chat_final)
        chat = admin.get(f"/v1/prompts/{CHAT_PROMPT}")
        shipped_chat = admin.get(f"/v1/prompts/{CHAT_PROMPT}/versions/"
                                 f"{chat['labels']['production']}")
        assert shipped_chat["messages"][0]["role"] == "system"
        assert shipped_chat["messages"][-2] == {"role": "placeholder", "name": "history"}
        assert shipped_chat["config"] == {"max_tokens": 400, "model": "simulated-llm",
                                          "temperature": 0.2}

        history = admin.get(f"/v1/prompts/{LOOP_PROMPT}/history", params={"limit": 10_000})
        kinds = [h["type"] for h in history["history"]]
        for step in ("prompt.created", "patterns.mined", "candidate.proposed",
                     "deployment.started", "deployment.stepped", "deployment.promoted",
                     "label.moved"):
            assert step in kinds, f"{step} missing from the history"
        promoted = next(h for h in history["history"] if h["type"] == "deployment.promoted")
        assert promoted["actor"] == "promptd"
        guarded = [h["type"] for h in
                   admin.get(f"/v1/prompts/{GUARDED_PROMPT}/history")["history"]]
        assert "deployment.rolled_back" in guarded

        # Every event the fleet recorded is in the log, exactly once.
        stats = fleet.client.stats
        assert stats.pending == 0 and stats.rejected == 0
        stored = 0
        with httpx.Client(base_url=proc.url, timeout=30,
                          headers={"Authorization": f"Bearer {proc.admin_token}"}) as http:
            after = 0
            while True:
                page = http.get("/v1/events", params={"after": after, "limit": 10_000,
                                                      "type": ["execution", "correction"]}).json()
                if not page["events"]:
                    break
                stored += len(page["events"])
                after = page["next_after"]
        assert stored == stats.recorded == fleet.stats.executions + fleet.stats.corrections
        admin.close()
    finally:
        proc.terminate()
