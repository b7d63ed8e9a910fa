"""``promptd demo`` and ``promptd simulate``: the closed loop, live in a terminal."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.sdk import AdminClient, AdminError
from service.simulation.fleet import ArmTally, Fleet, FleetConfig, FleetStats
from service.simulation.world import DEFAULT_WORLD, SIMULATION_TAG, World

LOOP_PROMPT = "support/answer"
GUARDED_PROMPT = "sales/reply"
CHAT_PROMPT = "support/chat"
BASE_TEMPLATES = {
    LOOP_PROMPT: ("You are a customer support agent for ACME.\n"
                  "Category: {{ category }}\nQuestion: {{ question }}\n"
                  "Answer the customer's question helpfully.\n"),
    GUARDED_PROMPT: ("You are a sales assistant for ACME.\n"
                     "Category: {{ category }}\nQuestion: {{ question }}\n"
                     "Reply to the prospect accurately.\n"),
}
# The chat prompt runs through the same loop: its rules land in the system message, its
# worked examples become user/assistant turns; the agents insert their chat history.
BASE_CHATS: dict[str, list[dict[str, str]]] = {
    CHAT_PROMPT: [
        {"role": "system", "content": "You are a customer support agent for ACME, "
                                      "chatting with a customer.\nAnswer helpfully."},
        {"role": "placeholder", "name": "history"},
        {"role": "user", "content": "Category: {{ category }}\nQuestion: {{ question }}"},
    ],
}
CHAT_CONFIG = {"model": "simulated-llm", "temperature": 0.2, "max_tokens": 400}
PROMPTS = [*BASE_TEMPLATES, *BASE_CHATS]


def text_of(version: dict[str, Any]) -> str:
    """Return a version as the world model reads it: a chat prompt's contents joined."""
    messages = version.get("messages")
    if messages is None:
        return str(version["template"])
    return "\n\n".join(m["content"] for m in messages if "content" in m)


def base_text(prompt: str) -> str:
    """Return a simulation prompt's first version as text."""
    if prompt in BASE_CHATS:
        return text_of({"messages": BASE_CHATS[prompt]})
    return BASE_TEMPLATES[prompt]


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


WIDTH = 80  # the terminal the demo's output is written for


def say(line: str) -> None:
    """Print simulation output, labelled as such and wrapped at 80 columns."""
    indent = " " * (len(line) - len(line.lstrip(" ")))
    width = WIDTH - len(SIMULATION_TAG) - 1
    # A path or URL longer than a line stays whole: breaking it would make it uncopyable.
    for part in textwrap.wrap(line, width, initial_indent="", subsequent_indent=indent + "  ",
                              break_long_words=False, break_on_hyphens=False) or [""]:
        print(f"{SIMULATION_TAG} {part}", flush=True)


def promptd_command() -> str:
    """Return how a person runs ``promptd`` from here: on PATH, else the venv's script."""
    script = Path(sys.executable).parent / "promptd"
    if shutil.which("promptd") == str(script) or not script.exists():
        return "promptd"
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def compressed_timings() -> str:
    """Return one sentence on how the demo's timings differ from the production defaults."""
    from deploy.policy import CanaryPolicy
    from service.runtime.settings import Settings

    demo, policy = FAST_SETTINGS["canary_policy"], CanaryPolicy()
    real = Settings.model_fields
    return (f"timings are compressed for the demo: a canary tick every "
            f"{FAST_SETTINGS['canary_interval_s']:g} s, steps of at least "
            f"{demo['min_step_seconds']:g} s and {demo['min_samples_per_step']} executions per "
            f"arm, mining every {FAST_SETTINGS['mine_interval_s']:g} s (production defaults: "
            f"ticks every {real['canary_interval_s'].default:g} s, steps of at least "
            f"{policy.min_step_seconds / 3600:g} h and {policy.min_samples_per_step} executions, "
            f"mining every {real['mine_interval_s'].default / 60:g} min)")


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
    for name, messages in BASE_CHATS.items():
        if name not in existing:
            admin.post("/v1/prompts", {"name": name, "messages": messages,
                                       "config": CHAT_CONFIG,
                                       "description": f"{SIMULATION_TAG} demo chat prompt"})


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
        say(f"t={now - self.started:.0f}s  {rate:,.0f} executions/s  total {n:,}  "
            f"candidates {loop.candidates}  promoted {promoted}  rolled back {rolled}")
        for prompt in self.prompts:
            live = next((d for d in loop.deployments if d["prompt"] == prompt
                         and d["phase"] not in ("promoted", "rolled_back", "superseded")), None)
            state = (f"canary {live['phase']}, candidates get {live['candidate_share']:.1%} "
                     f"of traffic (step {live['step']}/{live['steps']})" if live
                     else f"production v{loop.production[prompt]}")
            say(f"  {prompt}: {state}; {loop.patterns[prompt]} patterns")
            for (p, version, arm), tally in sorted(current.items()):
                if p != prompt:
                    continue
                before = self._last.get((p, version, arm), ArmTally())
                dn = tally.executions - before.executions
                if dn < 20:
                    continue
                ds = tally.successes - before.successes
                dc = tally.corrections - before.corrections
                say(f"    v{version}/{arm:<8} success {ds / dn:4.0%}  corrected {dc / dn:4.0%}  "
                    f"n={dn}")
        self._last, self._last_n, self._last_t = current, n, now


def _measured(version: int, rate: tuple[float, int] | None, which: str) -> str:
    if rate is None:
        return f"  measured success of v{version}: no executions"
    return f"  measured success of v{version}, {which} {rate[1]:,} executions: {rate[0]:.1%}"


def headline(stats: FleetStats, admin: AdminClient, world: World, prompt: str,
             base: int, production: int) -> list[str]:
    """Return the summary's lines comparing the base version with production, like for like.

    Expected against expected (the world model's success of each version's text), measured
    against measured (what the fleet saw each version do), never one against the other.
    """
    texts = {v: text_of(admin.get(f"/v1/prompts/{prompt}/versions/{v}"))
             for v in {base, production}}
    expected = {v: world.expected_success(t) for v, t in texts.items()}
    moved = (f"production v{base} -> v{production}" if production != base
             else f"production stayed v{base}")
    return [f"{prompt}: {moved}",
            f"  expected success (world model): v{base} {expected[base]:.1%} -> "
            f"v{production} {expected[production]:.1%}",
            _measured(base, stats.measured(prompt, base, first=True), "its first"),
            _measured(production, stats.measured(prompt, production, first=False),
                      "its last")]


def summary(stats: FleetStats, admin: AdminClient, prompts: list[str], world: World,
            base_versions: Mapping[str, int]) -> None:
    """Print how the loop did: each prompt's base vs final production version, what shipped."""
    loop = read_loop(admin, prompts)
    say("=" * (WIDTH - len(SIMULATION_TAG) - 1))
    say(f"summary after {stats.executions:,} simulated executions "
        f"({stats.corrections:,} simulated corrections)")
    for prompt in prompts:
        for line in headline(stats, admin, world, prompt, base_versions[prompt],
                             loop.production[prompt]):
            say(line)
        for d in loop.deployments:
            if d["prompt"] != prompt:
                continue
            if d["phase"] == "promoted":
                winner = next(a for a in d["arms"] if a["name"] == d["winner"])
                say(f"  shipped v{winner['version']} ({d['deployment_id']}): "
                    f"{d['outcome_reason']}")
            elif d["phase"] == "rolled_back":
                versions = ", ".join(f"v{a['version']}" for a in d["arms"]
                                     if a["name"] != "control")
                who = "machine-written" if d["machine_written"] else "hand-deployed"
                say(f"  rolled back {who} {versions}: {d['outcome_reason'][:150]}")


def look_around(url: str, token_file: str | None) -> None:
    """Print the commands that show what the loop did, while the daemon is up."""
    cmd = promptd_command()
    say("while it runs, look around from another terminal:")
    say(f"  export PROMPTD_URL={url}")
    if token_file:
        say(f"  export PROMPTD_TOKEN_FILE={token_file}")
    say(f"  {cmd} history {LOOP_PROMPT}")
    say(f"  {cmd} deployments --all")
    say(f"  {cmd} patterns {LOOP_PROMPT}")
    say(f"  API docs: {url}/docs  metrics: {url}/metrics")


def drive(url: str, token: str, *, duration_s: float, seed: int, agents: int,
          rate_per_s: float | None, harmful: bool, world_name: str = DEFAULT_WORLD,
          progress_every_s: float = 5.0) -> FleetStats:
    """Run the fleet against ``url`` with live progress, then print the summary.

    Ctrl-C stops the fleet: agents finish the task in hand, every recorded event is
    delivered, and the summary is printed while the daemon still answers.
    """
    world = World.named(world_name, seed)
    admin = AdminClient(url, token)
    ensure_prompts(admin)
    prompts = list(PROMPTS)
    base_versions = {p: read_loop(admin, [p]).production[p] for p in prompts}
    baselines = {p: world.expected_success(base_text(p)) for p in prompts}
    fleet = Fleet(url, token, world, FleetConfig(prompts=prompts, agents=agents,
                                                 rate_per_s=rate_per_s, seed=seed))
    progress = Progress(fleet.stats, admin, prompts)
    runner = threading.Thread(target=fleet.run, kwargs={"duration_s": duration_s},
                              name="sim-fleet", daemon=True)
    say(f"fleet of {agents} simulated agents in world {world.name}, seed {seed}, for "
        f"{duration_s:.0f}s; "
        "expected success of the base prompts (world model): "
        + ", ".join(f"{p} {b:.1%}" for p, b in baselines.items()))
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
        say("stopping (Ctrl-C): agents finish the task in hand, then every event is delivered")
        fleet.stop()
        runner.join(60)
    fleet.close()
    summary(fleet.stats, admin, prompts, world, base_versions)
    admin.close()
    return fleet.stats


def run_demo(*, duration_s: float, seed: int, data_dir: Path | None, agents: int,
             rate_per_s: float | None, world_name: str = DEFAULT_WORLD) -> int:
    """Start a daemon on a fresh SQLite folder, run the fleet against it, print the summary."""
    from service.server import free_port, wait_until_up

    folder = (data_dir or Path("var") / time.strftime("demo-%Y%m%d-%H%M%S")).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # The daemon runs in its own process, as in production: the fleet's agents and the
    # daemon do not share one interpreter lock. It runs in its own session too, so Ctrl-C
    # in the terminal reaches the demo alone: the demo stops the fleet, delivers what was
    # recorded and prints the summary, and only then stops the daemon.
    env = {**os.environ, **daemon_env(folder, port)}
    log_file, token_file, db = folder / "promptd.log", folder / "admin.token", folder / "promptd.db"
    with open(log_file, "ab") as log:
        daemon = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env,
                                  stdout=log, stderr=log, start_new_session=True)
    status = 0
    try:
        say(f"starting promptd on {url}; its log: {log_file}")
        wait_until_up(url, timeout=60)
        say(f"data folder {folder}")
        say(compressed_timings())
        look_around(url, str(token_file))
        drive(url, token_file.read_text().strip(), duration_s=duration_s, seed=seed,
              agents=agents, rate_per_s=rate_per_s, harmful=True, world_name=world_name)
    except KeyboardInterrupt:
        say("interrupted: stopping the daemon without a summary")
        status = 130
    except TimeoutError as exc:
        say(f"{exc}; see {log_file}")
        status = 1
    finally:
        daemon.terminate()
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
    cmd = promptd_command()
    say(f"daemon stopped; its log of events is {db}")
    say("to look around again, serve that log and ask it:")
    say(f"  PROMPTD_DATABASE_URL=sqlite:///{db} PROMPTD_TOKEN_FILE={token_file} {cmd} serve")
    say(f"  PROMPTD_TOKEN_FILE={token_file} {cmd} history {LOOP_PROMPT}")
    say(f"`{cmd} replay --database-url sqlite:///{db}` rebuilds its read models and "
        "checks them")
    return status


def run_simulate(url: str, token: str | None, *, duration_s: float, seed: int, agents: int,
                 rate_per_s: float | None, harmful: bool,
                 world_name: str = DEFAULT_WORLD) -> int:
    """Run the fleet against a daemon that is already running."""
    if not token:
        print("promptd simulate: needs an admin token (--token, PROMPTD_TOKEN or "
              "var/admin.token)", file=sys.stderr)
        return 1
    look_around(url, None)
    try:
        drive(url, token, duration_s=duration_s, seed=seed, agents=agents,
              rate_per_s=rate_per_s, harmful=harmful, world_name=world_name)
    except KeyboardInterrupt:
        say("interrupted again: stopped without a summary")
        return 130
    return 0
