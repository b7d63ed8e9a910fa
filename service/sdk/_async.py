"""The asyncio client: a background task delivers batches."""

from __future__ import annotations

import asyncio
import contextlib
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


class AsyncPromptdClient(_ClientCore):
    """The asyncio agent SDK: ``PromptdClient``'s surface, awaitable, with a sender task."""

    def _open(self, headers: dict[str, str], transport: Any, timeout: float) -> None:
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout,
                                       transport=transport)
        self._cond = asyncio.Condition()  # binds to the running loop on first use
        self._abandon = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # refreshes, referenced so none is lost

    async def __aenter__(self) -> AsyncPromptdClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def resolve(self, prompt: str, subject: str | None = None, *,
                      label: str = "production") -> Resolution:
        """Return the version to use now: cached, stale while refreshing, or the fallback."""
        cached = self._cached(prompt, subject, label)
        if cached is not None:
            return _marked(cached.for_subject(subject), subject)
        try:
            res = await self._fetch(prompt, subject, label, retries=1)
        except PromptdError as exc:
            return self._fallback(prompt, label, exc)
        self._store(subject, res)
        return _marked(res.for_subject(subject), subject)

    async def _fetch(self, prompt: str, subject: str | None, label: str,
                     retries: int) -> Resolution:
        path, params = self._resolve_path(prompt, subject, label)
        for attempt in range(retries + 1):
            try:
                response: httpx.Response | Exception = await self._http.get(
                    path, params=params, timeout=self.resolve_timeout)
            except httpx.TransportError as exc:
                response = exc
            answer = self._resolve_answer(prompt, response, attempt, retries)
            if isinstance(answer, Resolution):
                return answer
            await asyncio.sleep(answer)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _start_refresh(self, key: tuple[Any, ...], prompt: str, subject: str | None,
                       label: str) -> None:
        async def refresh() -> None:
            try:
                self._store(subject, await self._fetch(prompt, subject, label, retries=0))
            except PromptdError as exc:
                self._refresh_failed(key, exc)
            finally:
                self._refreshing.discard(key)

        task = asyncio.get_running_loop().create_task(refresh())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def record_execution(self, prompt: str, version: int, **fields: Any) -> str:
        """Queue an execution event (fields as in ``ExecutionIn``); return its event id."""
        return await self._enqueue(self._encode(ExecutionIn, {
            "prompt": prompt, "version": version, **fields}))

    async def record_correction(self, execution_id: str, prompt: str, version: int,
                                category: str, **fields: Any) -> str:
        """Queue a correction of an execution (fields as in ``CorrectionIn``); return its id."""
        return await self._enqueue(self._encode(CorrectionIn, {
            "execution_id": execution_id, "prompt": prompt, "version": version,
            "category": category, **fields}))

    def execution(self, prompt: str, subject: str | None = None, *,
                  label: str = "production") -> _AsyncTimedRun:
        """Return an async context manager that resolves, times the block and records it."""
        return _AsyncTimedRun(self, prompt, subject, label)

    async def _enqueue(self, item: _Queued) -> str:
        async with self._cond:
            if not self._has_room():  # checked first: wait_for costs a task per call
                try:
                    await asyncio.wait_for(self._cond.wait_for(self._has_room),
                                           self.block_timeout)
                except TimeoutError:
                    raise self._buffer_full() from None
            if self._admit(item):
                self._cond.notify_all()
            if self._sender is None:
                self._sender = asyncio.get_running_loop().create_task(self._send_loop())
        return item.event_id

    async def _send_loop(self) -> None:
        first_seen: float | None = None
        while True:
            async with self._cond:
                batch, wait, first_seen = self._plan(first_seen)
                if batch is None:
                    if wait is not None and wait < 0:
                        return
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._cond.wait(), wait)
                    continue
            try:
                unsent = await self._deliver(batch)
            except Exception as exc:  # a fault must not kill the only sender: keep the batch
                async with self._cond:
                    self._requeue(batch, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._abandon.wait(), self.backoff_cap)
                continue
            async with self._cond:
                stop = self._settle(len(batch), unsent)
                self._cond.notify_all()
            if stop:
                return

    async def _deliver(self, batch: tuple[_Queued, ...]) -> list[_Queued]:
        delivery = _Delivery(batch)
        while delivery.work:
            if self._abandon.is_set():
                return delivery.unsent()
            self._counts["requests"] += 1
            try:
                response: httpx.Response | Exception = await self._http.post(
                    "/v1/events", content=delivery.body())
            except httpx.TransportError as exc:
                response = exc
            delay = delivery.answered(response, self)
            if delay is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._abandon.wait(), delay)
        return []

    async def flush(self, timeout: float | None = None) -> None:
        """Return once every event recorded so far is stored or rejected; raise on timeout."""
        async with self._cond:
            target = self._recorded
            self._flush_waiters += 1
            self._cond.notify_all()
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._cond.wait_for(lambda: self._flushed(target)),
                                           timeout)
            finally:
                self._flush_waiters -= 1
        self._check_flushed(target)

    async def close(self, timeout: float = 30.0) -> None:
        """Deliver everything recorded, stop and free the connections; raise if that failed."""
        if self._closed:
            return
        async with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._sender is not None:
            done, _ = await asyncio.wait({self._sender}, timeout=timeout)
            if not done:  # give up: interrupt the backoff, keep what is unsent
                self._abandon.set()
                await asyncio.wait({self._sender})
        for task in list(self._tasks):
            task.cancel()
        self._closed = True
        await self._http.aclose()
        self._check_delivered(timeout)


class _AsyncTimedRun:
    """``async with client.execution(...) as run``: the async twin of ``_TimedRun``."""

    def __init__(self, client: AsyncPromptdClient, prompt: str, subject: str | None,
                 label: str) -> None:
        self.client, self.prompt, self.subject, self.label = client, prompt, subject, label
        self.run: Run | None = None

    async def __aenter__(self) -> Run:
        self.run = Run(await self.client.resolve(self.prompt, self.subject, label=self.label),
                       self.subject)
        # The run records itself: its spans tell the daemon so, and are not counted twice.
        mark_current_span(self.run.resolution, self.subject, self.run.event_id)
        return self.run

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self.run is not None and (fields := self.run.finish(exc_type)) is not None:
            try:
                await self.client.record_execution(**fields)
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
