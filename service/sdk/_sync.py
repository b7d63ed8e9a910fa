"""The synchronous client: a background sender thread delivers batches."""

from __future__ import annotations

import atexit
import threading
import time
import weakref
from types import TracebackType
from typing import Any

import httpx

from service.contract import CorrectionIn, ExecutionIn

from ._core import _ClientCore
from ._delivery import _Delivery, _Queued
from ._log import EventLogger
from ._models import PromptdError, Resolution, Run
from ._otel import mark_current_span

log = EventLogger("promptd.sdk")


_open_clients: weakref.WeakSet[PromptdClient] = weakref.WeakSet()


@atexit.register
def _close_open_clients() -> None:
    for client in list(_open_clients):  # the sender is a daemon thread: deliver before exit
        try:
            client.close(timeout=5.0)
        except PromptdError as exc:
            log.error("promptd.exit_undelivered", error=str(exc))


class PromptdClient(_ClientCore):
    """The synchronous agent SDK: cached resolve, batched event delivery from a thread."""

    def _open(self, headers: dict[str, str], transport: Any, timeout: float) -> None:
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout,
                                  transport=transport)
        self._cond = threading.Condition()
        self._abandon = threading.Event()
        self._sender: threading.Thread | None = None

    def __enter__(self) -> PromptdClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def resolve(self, prompt: str, subject: str | None = None, *,
                label: str = "production") -> Resolution:
        """Return the version to use now: cached, stale while refreshing, or the fallback."""
        cached = self._cached(prompt, subject, label)
        if cached is not None:
            return _marked(cached.for_subject(subject), subject)
        try:
            res = self._fetch(prompt, subject, label, retries=1)
        except PromptdError as exc:
            return self._fallback(prompt, label, exc)
        self._store(subject, res)
        return _marked(res.for_subject(subject), subject)

    def _fetch(self, prompt: str, subject: str | None, label: str, retries: int) -> Resolution:
        path, params = self._resolve_path(prompt, subject, label)
        for attempt in range(retries + 1):
            try:
                response: httpx.Response | Exception = self._http.get(
                    path, params=params, timeout=self.resolve_timeout)
            except httpx.TransportError as exc:
                response = exc
            answer = self._resolve_answer(prompt, response, attempt, retries)
            if isinstance(answer, Resolution):
                return answer
            time.sleep(answer)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _start_refresh(self, key: tuple[Any, ...], prompt: str, subject: str | None,
                       label: str) -> None:
        def refresh() -> None:
            try:
                self._store(subject, self._fetch(prompt, subject, label, retries=0))
            except PromptdError as exc:
                self._refresh_failed(key, exc)
            finally:
                self._refreshing.discard(key)

        threading.Thread(target=refresh, name="promptd-refresh", daemon=True).start()

    def record_execution(self, prompt: str, version: int, **fields: Any) -> str:
        """Queue an execution event (fields as in ``ExecutionIn``); return its event id."""
        return self._enqueue(self._encode(ExecutionIn, {"prompt": prompt, "version": version,
                                                        **fields}))

    def record_correction(self, execution_id: str, prompt: str, version: int, category: str,
                          **fields: Any) -> str:
        """Queue a correction of an execution (fields as in ``CorrectionIn``); return its id."""
        return self._enqueue(self._encode(CorrectionIn, {
            "execution_id": execution_id, "prompt": prompt, "version": version,
            "category": category, **fields}))

    def execution(self, prompt: str, subject: str | None = None, *,
                  label: str = "production") -> _TimedRun:
        """Return a context manager that resolves, times the block and records its outcome."""
        return _TimedRun(self, prompt, subject, label)

    def _enqueue(self, item: _Queued) -> str:
        with self._cond:
            if not self._cond.wait_for(self._has_room, self.block_timeout):
                raise self._buffer_full()
            if self._admit(item):
                self._cond.notify_all()
            if self._sender is None:  # started on first use: a resolve-only client has none
                self._sender = threading.Thread(target=self._send_loop, name="promptd-sender",
                                                daemon=True)
                self._sender.start()
                _open_clients.add(self)
        return item.event_id

    def _send_loop(self) -> None:
        first_seen: float | None = None
        while True:
            with self._cond:
                batch, wait, first_seen = self._plan(first_seen)
                if batch is None:
                    if wait is not None and wait < 0:
                        return
                    self._cond.wait(wait)
                    continue
            try:
                unsent = self._deliver(batch)
            except Exception as exc:  # a fault must not kill the only sender: keep the batch
                with self._cond:
                    self._requeue(batch, exc)
                self._abandon.wait(self.backoff_cap)
                continue
            with self._cond:
                stop = self._settle(len(batch), unsent)
                self._cond.notify_all()
            if stop:
                return

    def _deliver(self, batch: tuple[_Queued, ...]) -> list[_Queued]:
        delivery = _Delivery(batch)
        while delivery.work:
            if self._abandon.is_set():
                return delivery.unsent()
            self._counts["requests"] += 1
            try:
                response: httpx.Response | Exception = self._http.post(
                    "/v1/events", content=delivery.body())
            except httpx.TransportError as exc:
                response = exc
            delay = delivery.answered(response, self)
            if delay is not None:
                self._abandon.wait(delay)
        return []

    def flush(self, timeout: float | None = None) -> None:
        """Return once every event recorded so far is stored or rejected; raise on timeout."""
        with self._cond:
            target = self._recorded
            self._flush_waiters += 1
            self._cond.notify_all()
            try:
                self._cond.wait_for(lambda: self._flushed(target), timeout)
            finally:
                self._flush_waiters -= 1
        self._check_flushed(target)

    def close(self, timeout: float = 30.0) -> None:
        """Deliver everything recorded, stop and free the connections; raise if that failed."""
        with self._cond:
            if self._closed:
                return
            self._closing = True
            self._cond.notify_all()
        if self._sender is not None:
            self._sender.join(timeout)
            if self._sender.is_alive():  # give up: interrupt the backoff, keep what is unsent
                self._abandon.set()
                self._sender.join()
        with self._cond:
            self._closed = True
        _open_clients.discard(self)
        self._http.close()
        self._check_delivered(timeout)


class _TimedRun:
    """``with client.execution(...) as run``: resolve, time the block, record the outcome."""

    def __init__(self, client: PromptdClient, prompt: str, subject: str | None,
                 label: str) -> None:
        self.client, self.prompt, self.subject, self.label = client, prompt, subject, label
        self.run: Run | None = None

    def __enter__(self) -> Run:
        self.run = Run(self.client.resolve(self.prompt, self.subject, label=self.label),
                       self.subject)
        # The run records itself: its spans tell the daemon so, and are not counted twice.
        mark_current_span(self.run.resolution, self.subject, self.run.event_id)
        return self.run

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.run is not None and (fields := self.run.finish(exc_type)) is not None:
            try:
                self.client.record_execution(**fields)
            except (PromptdError, ValueError) as problem:
                if exc_type is None:
                    raise
                log.error("promptd.run_not_recorded", error=str(problem))  # keep the original
            else:
                self.run.recorded = True


def _marked(resolution: Resolution, subject: str | None) -> Resolution:
    """Return ``resolution`` after naming it on the agent's current span (if it traces)."""
    mark_current_span(resolution, subject)
    return resolution
