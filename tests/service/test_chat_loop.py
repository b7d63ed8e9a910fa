"""A chat prompt through the loop's jobs on a live daemon: mined, improved, canaried."""

from __future__ import annotations

from pathlib import Path

from tests.service.test_loop_jobs import _traffic_with_corrections, loop  # noqa: F401
from tests.support import LiveDaemon, live_daemon

NAME = "support/chat"
MESSAGES = [{"role": "system", "content": "You triage support tickets for ACME."},
            {"role": "placeholder", "name": "history"},
            {"role": "user", "content": "Ticket: {{ ticket }}"}]
CONFIG = {"model": "gpt-4o-mini", "temperature": 0.1}


def _create(live: LiveDaemon) -> None:
    live.client().post("/v1/prompts", json={"name": NAME, "messages": MESSAGES,
                                            "config": CONFIG}).raise_for_status()


def _shapes(messages: list[dict[str, str]]) -> list[str]:
    return [m["role"] + (":" + m["name"] if m["role"] == "placeholder" else "")
            for m in messages]


def test_the_improver_writes_chat_candidates_that_keep_roles_placeholders_and_config(
        loop: LiveDaemon) -> None:  # noqa: F811
    _create(loop)
    admin = loop.client()
    _traffic_with_corrections(loop, NAME)
    assert admin.post("/v1/jobs/mine").json()["result"] == 1
    assert admin.post("/v1/jobs/improve").json()["result"] >= 1
    cands = admin.get(f"/v1/prompts/{NAME}/candidates").json()["candidates"]
    assert cands and all(c["status"] == "in_canary" for c in cands)
    strategies = set()
    for c in cands:
        shown = admin.get(f"/v1/prompts/{NAME}/versions/{c['version']}").json()
        assert shown["template"] == "" and shown["config"] == CONFIG
        shapes = _shapes(shown["messages"])
        # Rules edit the system message; a few-shot example adds user/assistant pairs.
        assert shapes[0] == "system" and shapes[-2:] == ["placeholder:history", "user"]
        # The turn the agent fills keeps its text (sandwich may repeat a rule after it).
        assert shown["messages"][-1]["content"].startswith(MESSAGES[-1]["content"])
        assert shown["variables"] == ["ticket"]
        diff = admin.get(f"/v1/prompts/{NAME}/diff",
                         params={"from": 1, "to": c["version"]}).json()
        assert diff["changed"] and not any(p.startswith("config") for p in diff["changed"])
        strategies.add(c["strategy"])
    assert "additive" in strategies
    deps = admin.get("/v1/deployments").json()["deployments"]
    assert [d["prompt"] for d in deps] == [NAME] and deps[0]["machine_written"]
    agent = loop.client(loop.issue("agent"))
    served = {agent.get(f"/v1/prompts/{NAME}/resolve", params={"subject": f"u{i}"})
              .json()["version"] for i in range(60)}
    assert len(served) > 1  # the canary serves the chat candidates beside control


def test_the_llm_rewriter_edits_a_chat_prompt_in_the_loop(tmp_path: Path) -> None:
    from tests.improver.llm_stub import CHECKLIST_HEADING, serve_llm_stub

    with serve_llm_stub() as stub, live_daemon(
        tmp_path, improve_min_pattern_size=3, improve_min_pattern_share=0.0,
        improve_cooldown_s=0.0, llm_base_url=stub.base_url, llm_model="stub-model",
    ) as live:
        _create(live)
        admin = live.client()
        _traffic_with_corrections(live, NAME)
        admin.post("/v1/jobs/mine").raise_for_status()
        admin.post("/v1/jobs/improve").raise_for_status()
        cands = admin.get(f"/v1/prompts/{NAME}/candidates").json()["candidates"]
        rewritten = next(c for c in cands if c["strategy"] == "llm_rewriter")
        shown = admin.get(f"/v1/prompts/{NAME}/versions/{rewritten['version']}").json()
        assert CHECKLIST_HEADING in shown["messages"][0]["content"]
        assert shown["messages"][1:] == MESSAGES[1:]
