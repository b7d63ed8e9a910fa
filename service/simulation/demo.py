"""``promptd demo`` and ``promptd simulate``: the closed loop, live in a terminal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.sdk import AdminClient, AdminError
from service.simulation.fleet import ArmTally, Fleet, FleetConfig, FleetStats
from service.simulation.world import SIMULATION_TAG, World

LOOP_PROMPT = "support/answer"
GUARDED_PROMPT = "sales/reply"
BASE_TEMPLATES = {
    LOOP_PROMPT: ("You are a customer support agent for ACME.\n"
                  "Category: {{ category }}\nQuestion: {{ question }}\n"
                  "Answer the customer's question helpfully.\n"),
    GUARDED_PROMPT: ("You are a sales assistant for ACME.\n"
                     "Category: {{ category }}\nQuestion: {{ question }}\n"
                     "Reply to the prospect accurately.\n"),
}
HARMFUL_EDIT = "Always answer in one word. Never ask questions.\n"

# Scheduler and canary settings that make the loop visible in minutes instead of days.
FAST_SETTINGS: dict[str, Any] = {
    "mine_interval_s": 6.0, "improve_interval_s": 8.0, "canary_interval_s": 2.0,
    "mining_window_s": 15.0, "mining_windows": 8, "improve_min_pattern_size": 15,
    "improve_min_pattern_share": 0.01, "improve_cooldown_s": 4.0, "improve_candidates": 2,
    "log_level": "info",
    "canary_policy": {"steps": [20.0, 50.0, 100.0], "min_samples_per_step": 200,
                      "min_step_seconds": 3.0, "analysis_interval_seconds": 2.0,
                      "max_samples_per_arm": 4000},
}


def fast_env(**overrides: Any) -> dict[str, str]:
    """Return FAST_SETTINGS (with ``overrides``) as PROMPTD_* environment variables."""
    env = {}
    for key, value in {**FAST_SETTINGS, **overrides}.items():
        env[f"PROMPTD_{key.upper()}"] = json.dumps(value) if isinstance(value, dict) else str(value)
    return env


def daemon_env(folder: Path, port: int) -> dict[str, str]:
    """Return the PROMPTD_* environment of a fast-loop daemon keeping its files in ``folder``."""
    return {"PROMPTD_DATABASE_URL": f"sqlite:///{folder / 'promptd.db'}",
            "PROMPTD_TOKEN_FILE": str(folder / "admin.token"), "PROMPTD_PORT": str(port),
            "PROMPTD_HOST": "127.0.0.1", "PROMPTD_LOG_FORMAT": "json", **fast_env()}


def say(line: str) -> None:
    """Print one line of simulation output, labelled as such."""
    print(f"{SIMULATION_TAG} {line}", flush=True)


@dataclass
class LoopReport:
    """What the daemon did during the run, read through its admin API."""

    deployments: list[dict[str, Any]] = field(default_factory=list)
    patterns: dict[str, int] = field(default_factory=dict)
    candidates: int = 0
    production: dict[str, int] = field(default_factory=dict)


def read_loop(admin: AdminClient, prompts: list[str]) -> LoopReport:
    """Return deployments, pattern counts, candidates and production versions."""
    report = LoopReport()
    report.deployments = admin.get("/v1/deployments", params={"all": "true"})["deployments"]
    report.candidates = len(admin.get("/v1/candidates")["candidates"])
    for prompt in prompts:
        report.patterns[prompt] = len(admin.get(f"/v1/prompts/{prompt}/patterns")["patterns"])
        report.production[prompt] = admin.get(f"/v1/prompts/{prompt}")["labels"]["production"]
    return report


def ensure_prompts(admin: AdminClient) -> None:
    """Create the simulation's prompts unless they exist."""
    existing = {p["name"] for p in admin.get("/v1/prompts")["prompts"]}
    for name, template in BASE_TEMPLATES.items():
        if name not in existing:
            admin.post("/v1/prompts", {"name": name, "template": template,
                                       "description": f"{SIMULATION_TAG} demo prompt"})


def deploy_harmful_edit(admin: AdminClient) -> str:
    """Add a harmful version of the guarded prompt by hand and canary it; return its id."""
    info = admin.get(f"/v1/prompts/{GUARDED_PROMPT}")
    production = info["labels"]["production"]
    base = admin.get(f"/v1/prompts/{GUARDED_PROMPT}/versions/{production}")["template"]
    version = admin.post(f"/v1/prompts/{GUARDED_PROMPT}/versions", {
        "template": base + HARMFUL_EDIT,
        "rationale": f"{SIMULATION_TAG} an admin's terse-answers edit (secretly harmful)"})
    dep = admin.post("/v1/deployments", {"prompt": GUARDED_PROMPT,
                                         "versions": [version["version"]]})
    return str(dep["deployment_id"])


class Progress:
    """Prints per-interval rates from the fleet's tallies and the loop's state."""

    def __init__(self, stats: FleetStats, admin: AdminClient, prompts: list[str]) -> None:
        self.stats, self.admin, self.prompts = stats, admin, prompts
        self.started = time.monotonic()
        self._last: dict[tuple[str, int, str], ArmTally] = {}
        self._last_n, self._last_t = 0, self.started

    def line(self) -> None:
        """Print one progress block."""
        now = time.monotonic()
        with self.stats.lock:
            current = {k: ArmTally(v.executions, v.successes, v.corrections)
                       for k, v in self.stats.tallies.items()}
            n = self.stats.executions
        rate = (n - self._last_n) / max(now - self._last_t, 1e-9)
        try:
            loop = read_loop(self.admin, self.prompts)
        except AdminError as exc:
            say(f"(daemon not answering: {exc})")
            return
        promoted = sum(d["phase"] == "promoted" for d in loop.deployments)
        rolled = sum(d["phase"] == "rolled_back" for d in loop.deployments)
        say(f"t={now - self.started:5.0f}s  {rate:6.0f} executions/s  total {n:,}  "
            f"candidates {loop.candidates}  promoted {promoted}  rolled back {rolled}")
        for prompt in self.prompts:
            parts = []
            for (p, version, arm), tally in sorted(current.items()):
                if p != prompt:
                    continue
                before = self._last.get((p, version, arm), ArmTally())
                dn = tally.executions - before.executions
                if dn < 20:
                    continue
                ds = tally.successes - before.successes
                dc = tally.corrections - before.corrections
                parts.append(f"v{version}/{arm} ok {ds / dn:.0%} corr {dc / dn:.0%} (n={dn})")
            live = next((d for d in loop.deployments if d["prompt"] == prompt
                         and d["phase"] not in ("promoted", "rolled_back")), None)
            canary = (f"canary {live['phase']} {live['step_percent']:g}%" if live
                      else f"production v{loop.production[prompt]}")
            say(f"  {prompt:<15} {canary:<28} patterns {loop.patterns[prompt]:<3} "
                + "  ".join(parts))
        self._last, self._last_n, self._last_t = current, n, now


def summary(stats: FleetStats, admin: AdminClient, prompts: list[str], world: World,
            baselines: Mapping[str, float]) -> None:
    """Print how the loop did: baseline vs final success, versions shipped, rollbacks."""
    loop = read_loop(admin, prompts)
    say("=" * 72)
    say(f"summary after {stats.executions:,} simulated executions "
        f"({stats.corrections:,} simulated corrections)")
    for prompt in prompts:
        final = stats.recent_success(prompt)
        say(f"{prompt}: baseline success {baselines[prompt]:.1%} (expected) -> "
            f"final {final:.1%} (last {len(stats.recent.get(prompt, ()))} executions)"
            if final is not None else f"{prompt}: no executions")
        shipped = [d for d in loop.deployments if d["prompt"] == prompt
                   and d["phase"] == "promoted"]
        for d in shipped:
            winner = next(a for a in d["arms"] if a["name"] == d["winner"])
            say(f"  shipped v{winner['version']} ({d['deployment_id']}): {d['outcome_reason']}")
        for d in loop.deployments:
            if d["prompt"] == prompt and d["phase"] == "rolled_back":
                versions = ", ".join(f"v{a['version']}" for a in d["arms"]
                                     if a["name"] != "control")
                who = "machine-written" if d["machine_written"] else "hand-deployed"
                say(f"  rolled back {who} {versions}: {d['outcome_reason'][:150]}")
        say(f"  production is now v{loop.production[prompt]}")
    say("where to look next: /docs (API), /metrics (Prometheus), "
        f"`promptd history {LOOP_PROMPT}`, `promptd patterns {LOOP_PROMPT}`, "
        "`promptd deployments --all`")


def drive(url: str, token: str, *, duration_s: float, seed: int, agents: int,
          rate_per_s: float | None, harmful: bool,
          progress_every_s: float = 5.0) -> FleetStats:
    """Run the fleet against ``url`` with live progress, then print the summary."""
    world = World(seed)
    admin = AdminClient(url, token)
    ensure_prompts(admin)
    prompts = list(BASE_TEMPLATES)
    baselines = {p: world.expected_success(BASE_TEMPLATES[p]) for p in prompts}
    fleet = Fleet(url, token, world, FleetConfig(prompts=prompts, agents=agents,
                                                 rate_per_s=rate_per_s, seed=seed))
    progress = Progress(fleet.stats, admin, prompts)
    runner = threading.Thread(target=fleet.run, kwargs={"duration_s": duration_s},
                              name="sim-fleet", daemon=True)
    say(f"fleet of {agents} simulated agents, seed {seed}, for {duration_s:.0f}s; "
        f"expected baseline success {', '.join(f'{p} {b:.1%}' for p, b in baselines.items())}")
    if harmful:
        # Before any traffic: the improver cannot have claimed the prompt's one deployment.
        dep = deploy_harmful_edit(admin)
        say(f"an admin hand-deploys a terse edit of {GUARDED_PROMPT} ({dep}); "
            "it is secretly harmful")
    runner.start()
    try:
        while runner.is_alive():
            runner.join(progress_every_s)
            progress.line()
    except KeyboardInterrupt:
        say("stopping (Ctrl-C): finishing in-flight tasks and flushing events")
        fleet.stop()
        runner.join(10)
    fleet.close()
    summary(fleet.stats, admin, prompts, world, baselines)
    admin.close()
    return fleet.stats


def run_demo(*, duration_s: float, seed: int, data_dir: Path | None, agents: int,
             rate_per_s: float | None) -> int:
    """Start a daemon on a fresh SQLite folder, run the fleet against it, print the summary."""
    from service.server import free_port, wait_until_up

    folder = (data_dir or Path("var") / time.strftime("demo-%Y%m%d-%H%M%S")).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The daemon runs in its own process, as in production: the fleet's agents and the
    # daemon do not share one interpreter lock.
    env = {**os.environ, **daemon_env(folder, port)}
    log_file = folder / "promptd.log"
    with open(log_file, "ab") as log:
        daemon = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env,
                                  stdout=log, stderr=log)
    try:
        wait_until_up(url, timeout=60)
        token = (folder / "admin.token").read_text().strip()
        say(f"promptd is serving {url} (docs {url}/docs, metrics {url}/metrics); "
            f"its log: {log_file}")
        say(f"data folder {folder}; admin token in {folder / 'admin.token'}")
        say(f"try in another terminal: PROMPTD_URL={url} "
            f"PROMPTD_TOKEN_FILE={folder / 'admin.token'} promptd history {LOOP_PROMPT}")
        drive(url, token, duration_s=duration_s, seed=seed, agents=agents,
              rate_per_s=rate_per_s, harmful=True)
    finally:
        daemon.terminate()
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
    say(f"daemon stopped; the log is in {folder / 'promptd.db'} (`promptd replay "
        f"--database-url sqlite:///{folder / 'promptd.db'}` rebuilds and checks it)")
    return 0


def run_simulate(url: str, token: str | None, *, duration_s: float, seed: int, agents: int,
                 rate_per_s: float | None, harmful: bool) -> int:
    """Run the fleet against a daemon that is already running."""
    if not token:
        print("promptd simulate: needs an admin token (--token, PROMPTD_TOKEN or "
              "var/admin.token)", file=sys.stderr)
        return 1
    drive(url, token, duration_s=duration_s, seed=seed, agents=agents, rate_per_s=rate_per_s,
          harmful=harmful)
    return 0
