"""``promptd deploy --wait``: queue behind the deployment that holds a prompt, then deploy.

The daemon keeps no queue: waiting is the client's. The decision that matters — is the
prompt free *now* — stays on the command path: each try sends the deploy with
``supersede: false`` and the daemon answers 409 if any deployment holds the prompt when it
appends (expected-version append), so two waiting admins cannot both start one; the loser
sees the winner's deployment and waits behind it in turn. A refused try appends nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from service.cli.base import CommandError
from service.sdk import AdminClient

PROGRESS_EVERY_S = 10.0


class InterruptedWhileDeploying(KeyboardInterrupt):
    """Ctrl-C arrived while the deploy was on its way: it may or may not have started."""


def holder(api: AdminClient, prompt: str) -> dict[str, Any] | None:
    """Return the live deployment holding ``prompt``, or None when the prompt is free."""
    live = api.get("/v1/deployments", params={"prompt": prompt})["deployments"]
    return live[0] if live else None


def describe(d: dict[str, Any]) -> str:
    """Return who holds a prompt as one phrase: id, whose, phase, step and traffic."""
    whose = "a machine canary" if d["machine_written"] else "a person's deployment"
    return (f"{d['deployment_id']} ({whose}, {d['phase']}, step {d['step']}/{d['steps']}, "
            f"candidates get {d['candidate_share'] * 100:.4g}% of traffic)")


def deploy_when_free(api: AdminClient, body: dict[str, Any], *, timeout_s: float,
                     poll_s: float, progress_every_s: float = PROGRESS_EVERY_S,
                     say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Return the started deployment, once no deployment holds the prompt any more.

    Prints which deployment holds the prompt, and its step, when it starts waiting and then
    every ``progress_every_s``. Raises ``CommandError`` after ``timeout_s``, or with the
    daemon's reason when a deploy is refused for anything but a held prompt. Ctrl-C while
    waiting raises ``KeyboardInterrupt`` with nothing deployed, or ``InterruptedWhileDeploying``
    if it came while the deploy was being sent (``wait_interrupted`` words either).
    """
    speak = say or (lambda line: print(line, file=sys.stderr, flush=True))
    prompt = str(body["prompt"])
    started = time.monotonic()
    said_at: float | None = None
    queued = {**body, "supersede": False}
    unexplained = 0
    while True:
        # Always ask the daemon, never decide from a read: it refuses on the state it appends
        # to, so a deployment started a moment ago (the improver, another admin) is waited
        # for, never superseded.
        try:
            return dict(api.post("/v1/deployments", queued))
        except KeyboardInterrupt as exc:
            raise InterruptedWhileDeploying from exc
        except CommandError as exc:
            held = holder(api, prompt) if str(exc).startswith("409:") else None
            if held is None:
                unexplained += 1
                if unexplained > 1 or not str(exc).startswith("409:"):
                    raise  # refused for another reason: waiting will not change it
                continue  # the holder ended between the refusal and the look: try again now
        unexplained = 0
        now = time.monotonic()
        waited = now - started
        if waited >= timeout_s:
            raise CommandError(f"gave up after {waited:.0f}s (--timeout {timeout_s:g}): "
                               f"{prompt} is still held by {describe(held)}; nothing deployed")
        if said_at is None or now - said_at >= progress_every_s:
            speak(f"waiting {waited:.0f}s: {prompt} is held by {describe(held)}")
            said_at = now
        time.sleep(max(0.0, min(poll_s, timeout_s - waited)))


def wait_interrupted(api: AdminClient, prompt: str, exc: KeyboardInterrupt) -> str:
    """Return the line that says a Ctrl-C stopped the wait, and what holds the prompt now."""
    if isinstance(exc, InterruptedWhileDeploying):
        return (f"interrupted while the deploy was being sent: it may have started; "
                f"`promptd deployments --prompt {prompt}` shows what runs")
    try:
        held = holder(api, prompt)
    except CommandError:
        held = None
    now = f"; {prompt} is held by {describe(held)}" if held else ""
    return f"stopped waiting (Ctrl-C){now}; nothing deployed by this command"
