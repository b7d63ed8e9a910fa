"""The sans-IO delivery core: batches, verdicts on answers, retry timing."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx

from ._log import EventLogger

if TYPE_CHECKING:  # the core holds deliveries; a delivery only reports back to it
    from ._core import _ClientCore

log = EventLogger("promptd.sdk")


MAX_RETRY_AFTER_S = 60.0  # a proxy's "Retry-After: 86400" must not park the sender for a day


_EVENT_INDEX = re.compile(r"^events\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class RejectedEvent:
    """An event the daemon refused with a 4xx: dropped, never retried."""

    event: bytes  # the event's JSON as it was sent
    status: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class DeliveryStats:
    """Counters of the event pipeline since the client was made."""

    recorded: int
    pending: int
    stored: int
    duplicates: int
    rejected: int
    requests: int
    retries: int


@dataclass(frozen=True, slots=True)
class _Queued:
    event_id: str
    body: bytes  # encoded once at record time: retries resend the very same bytes


@dataclass(frozen=True, slots=True)
class _Verdict:
    retry: bool = False
    retry_after: float | None = None
    stored: int = 0
    duplicates: int = 0
    rejected: tuple[RejectedEvent, ...] = ()
    resend: tuple[tuple[_Queued, ...], ...] = ()


def retry_delay(attempt: int, retry_after: float | None, *, base: float, cap: float,
                rng: random.Random) -> float:
    """Return seconds to wait before retry ``attempt`` (0-based): full jitter, >= Retry-After."""
    # Full jitter (uniform below the exponential bound) spreads a fleet of agents that lost
    # the daemon together, so they do not all come back in the same instant.
    backoff = rng.uniform(0.0, min(cap, base * 2.0 ** min(attempt, 30)))
    if retry_after is None:
        return backoff
    return max(min(retry_after, MAX_RETRY_AFTER_S), backoff)


def parse_retry_after(value: str | None, now_epoch: float) -> float | None:
    """Return the seconds a Retry-After header asks for (delta or HTTP date); None if absent."""
    if not value or not value.strip():
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now_epoch)
    except (TypeError, ValueError):
        return None


def _retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


def _error_of(response: httpx.Response) -> tuple[str, str, list[dict[str, Any]]]:
    try:
        error = response.json()["error"]
        return str(error["code"]), str(error["message"]), list(error.get("details") or [])
    except (ValueError, KeyError, TypeError):
        return f"http_{response.status_code}", response.text[:200], []


def _encode_batch(parts: Sequence[_Queued]) -> bytes:
    return b'{"events":[' + b",".join(p.body for p in parts) + b"]}"


def _judge(parts: tuple[_Queued, ...], response: httpx.Response) -> _Verdict:
    """Return what to do after the daemon answered ``response`` to a POST of ``parts``."""
    status = response.status_code
    if status == 200:
        duplicates = int(response.json()["duplicates"])
        return _Verdict(stored=len(parts) - duplicates, duplicates=duplicates)
    if _retryable(status):
        return _Verdict(retry=True, retry_after=parse_retry_after(
            response.headers.get("retry-after"), time.time()))
    code, message, details = _error_of(response)
    if status in (413, 422):  # the daemon refuses a batch atomically: save what it did not name
        named: dict[int, str] = {}
        for d in details if status == 422 else ():
            m = _EVENT_INDEX.match(str(d.get("field", "")))
            if m and int(m.group(1)) < len(parts):
                named.setdefault(int(m.group(1)), f"{d.get('field')}: {d.get('message')}")
        if named:
            rest = tuple(p for i, p in enumerate(parts) if i not in named)
            return _Verdict(rejected=tuple(RejectedEvent(parts[i].body, status, code, text)
                                           for i, text in sorted(named.items())),
                            resend=(rest,) if rest else ())
        if len(parts) > 1:  # nothing named (or too big): bisect until the culprit is alone
            return _Verdict(resend=(parts[:len(parts) // 2], parts[len(parts) // 2:]))
    return _Verdict(rejected=tuple(RejectedEvent(p.body, status, code, message) for p in parts))


class _Delivery:
    """Sans-IO delivery of one batch: which part to post next and what each answer means."""

    def __init__(self, batch: tuple[_Queued, ...]) -> None:
        self.work: list[tuple[_Queued, ...]] = [batch]
        self.attempt = 0

    def body(self) -> bytes:
        """Return the request body of the next part to post."""
        return _encode_batch(self.work[-1])

    def answered(self, response: httpx.Response | Exception, core: _ClientCore) -> float | None:
        """Settle the last post (an exception: it failed in transit); return a retry delay."""
        if isinstance(response, Exception):
            log.warning("promptd.send_failed", error=f"{type(response).__name__}: {response}")
            verdict = _Verdict(retry=True)
        else:
            try:
                verdict = _judge(self.work[-1], response)
            except (ValueError, KeyError, TypeError):  # a 200 that is not ours (a proxy page)
                log.warning("promptd.send_unreadable", status=response.status_code)
                verdict = _Verdict(retry=True)
        if verdict.retry:
            self.attempt += 1
            core._counts["retries"] += 1
            return retry_delay(self.attempt - 1, verdict.retry_after, base=core.backoff_base,
                               cap=core.backoff_cap, rng=core._rng)
        self.work.pop()
        self.attempt = 0
        self.work.extend(reversed(verdict.resend))
        core._counts["stored"] += verdict.stored
        core._counts["duplicates"] += verdict.duplicates
        for rejected in verdict.rejected:
            core._report(rejected)
        return None

    def unsent(self) -> list[_Queued]:
        """Return every event of the batch not yet stored or rejected, oldest first."""
        return [p for part in reversed(self.work) for p in part]
