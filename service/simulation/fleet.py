"""The simulated agent fleet: agents that use promptd only through the public SDK."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from service.sdk import ClientClosed, PromptdClient
from service.simulation.world import SIMULATION_TAG, Task, World

_HISTORY = ({"role": "user", "content": "Hi, I wrote earlier about this."},
            {"role": "assistant", "content": "Hello again! How can I help?"})


@dataclass
class ArmTally:
    """Executions, successes and corrections of one (prompt, version, arm)."""

    executions: int = 0
    successes: int = 0
    corrections: int = 0

    @property
    def success_rate(self) -> float | None:
        """Return successes / executions (None before any execution)."""
        return self.successes / self.executions if self.executions else None


@dataclass
class FleetStats:
    """What the fleet did, counted on the agents' side."""

    executions: int = 0
    corrections: int = 0
    tallies: dict[tuple[str, int, str], ArmTally] = field(default_factory=dict)
    recent: dict[str, deque[int]] = field(default_factory=dict)  # last outcomes per prompt
    # Per (prompt, version): the first and the last outcomes it served, so a summary can
    # compare one version's measured rate with another's (or its own, later) like for like.
    first_by_version: dict[tuple[str, int], list[int]] = field(default_factory=dict)
    recent_by_version: dict[tuple[str, int], deque[int]] = field(default_factory=dict)
    checkpoints: list[tuple[int, str, float]] = field(default_factory=list)
    served_texts: dict[tuple[str, int], str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def recent_success(self, prompt: str) -> float | None:
        """Return the success rate over the prompt's most recent executions."""
        window = self.recent.get(prompt)
        return sum(window) / len(window) if window else None

    def measured(self, prompt: str, version: int, *, first: bool) -> tuple[float, int] | None:
        """Return (success rate, executions) over a version's first or most recent window."""
        key = (prompt, version)
        window = self.first_by_version.get(key) if first else self.recent_by_version.get(key)
        return (sum(window) / len(window), len(window)) if window else None


@dataclass(frozen=True)
class FleetConfig:
    """How many agents, how fast, how often people correct, which prompts."""

    prompts: Sequence[str]
    agents: int = 6
    rate_per_s: float | None = None  # overall cap; None runs as fast as the daemon allows
    correction_share: float = 0.6
    recent_window: int = 2_000
    checkpoint_every: int = 5_000
    seed: int = 0


class Fleet:
    """Runs agents against a daemon until stopped or ``max_executions`` is reached."""

    def __init__(self, url: str, token: str, world: World, config: FleetConfig) -> None:
        self.world = world
        self.config = config
        self.stats = FleetStats()
        self.client = PromptdClient(url, token, cache_ttl=2.0, flush_interval=0.2,
                                    batch_size=200, seed=config.seed)
        self._task_lock = threading.Lock()
        self._task_id = 0
        self._stop = threading.Event()

    def _next_task(self) -> Task:
        with self._task_lock:
            self._task_id += 1
            return self.world.next_task(self._task_id)

    def run(self, *, duration_s: float | None = None,
            max_executions: int | None = None) -> FleetStats:
        """Run every agent until the duration or execution budget is spent, or ``stop()``."""
        deadline = time.monotonic() + duration_s if duration_s else None
        threads = [threading.Thread(target=self._agent, args=(i, deadline, max_executions),
                                    name=f"sim-agent-{i}", daemon=True)
                   for i in range(self.config.agents)]
        for t in threads:
            t.start()
        try:
            for t in threads:
                while t.is_alive():
                    t.join(0.2)
        except KeyboardInterrupt:
            self._stop.set()
            for t in threads:
                t.join(5)
            raise
        return self.stats

    def stop(self) -> None:
        """Ask every agent to finish its current task and stop."""
        self._stop.set()

    def close(self) -> None:
        """Deliver every recorded event (the SDK loses nothing on close)."""
        self.client.close(timeout=120.0)

    def _agent(self, index: int, deadline: float | None, budget: int | None) -> None:
        rng = random.Random(self.config.seed * 1000 + index)
        per_agent_interval = (self.config.agents / self.config.rate_per_s
                              if self.config.rate_per_s else 0.0)
        next_at = time.monotonic()
        while not self._stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return
            if budget is not None and self.stats.executions >= budget:
                return
            if per_agent_interval:
                next_at += per_agent_interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
            for prompt in self.config.prompts:
                try:
                    self._one(prompt, rng)
                except ClientClosed:
                    return  # the fleet is closing: the task in hand is not recorded

    def _one(self, prompt: str, rng: random.Random) -> None:
        task = self._next_task()
        res = self.client.resolve(prompt, subject=task.subject)
        if res.is_chat:
            # A returning customer brings the conversation so far; it goes in as data.
            history = _HISTORY if task.task_id % 2 else []
            messages = res.render_messages(**task.variables, history=list(history))
            text = "\n\n".join(str(m["content"]) for m in messages)
            template = "\n\n".join(m["content"] for m in res.messages or () if "content" in m)
        else:
            text, template = res.render(**task.variables), res.template
        outcome = self.world.outcome(text, task, rng, template=template)
        if res.version is None:
            return  # the daemon is unreachable and this is the fallback: no version to credit
        version = res.version
        event_id = self.client.record_execution(
            prompt, version, deployment=res.deployment, arm=res.arm, step=res.step,
            stratum=res.stratum,
            subject=task.subject,
            success=outcome.success, latency_ms=round(outcome.latency_ms, 3),
            input_tokens=outcome.input_tokens, output_tokens=outcome.output_tokens,
            cost_usd=outcome.cost_usd, model="simulated-llm", input_text=task.question,
            output_text=outcome.output_text, variables=task.variables,
            metadata={"simulated": True})
        corrected = False
        if outcome.failed_mode is not None and rng.random() < self.config.correction_share:
            category, reason, fixed = self.world.correction_for(outcome.failed_mode, rng)
            self.client.record_correction(
                event_id, prompt, version, category, reason=reason,
                original_output=outcome.output_text, corrected_output=fixed,
                severity=self.world.severity_for(outcome.failed_mode),
                author=f"{SIMULATION_TAG} corrector")
            corrected = True
        self._tally(prompt, version, res.arm or "none", outcome.success, corrected, template)

    def _tally(self, prompt: str, version: int, arm: str, success: bool, corrected: bool,
               template: str) -> None:
        s = self.stats
        with s.lock:
            s.executions += 1
            s.corrections += corrected
            tally = s.tallies.setdefault((prompt, version, arm), ArmTally())
            tally.executions += 1
            tally.successes += success
            tally.corrections += corrected
            window = s.recent.setdefault(prompt, deque(maxlen=self.config.recent_window))
            window.append(int(success))
            first = s.first_by_version.setdefault((prompt, version), [])
            if len(first) < self.config.recent_window:
                first.append(int(success))
            s.recent_by_version.setdefault(
                (prompt, version), deque(maxlen=self.config.recent_window)).append(int(success))
            s.served_texts.setdefault((prompt, version), template)
            if s.executions % self.config.checkpoint_every == 0:
                for p in self.config.prompts:
                    rate = s.recent_success(p)
                    if rate is not None:
                        s.checkpoints.append((s.executions, p, rate))
