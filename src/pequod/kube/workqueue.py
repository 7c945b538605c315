"""A rate-limited work queue for asyncio, after client-go's workqueue.

Controllers put object keys on a ``WorkQueue`` and worker tasks take them off with ``get()``
and hand them back with ``done()``. The queue guarantees that:

* a key waiting in the queue is held once, however often it is added;
* a key is never handed out while the same key is being processed; a key added while it is
  being processed is marked dirty and queued again when ``done()`` is called for it;
* keys are handed out in the order they were queued.

Keys can also be added after a delay (``add_after``) or after a per-key exponential backoff
(``add_rate_limited``). Delays are asyncio timer handles on the running event loop, so nothing
polls and ``shut_down()`` cancels them all.

``add``, ``add_after``, ``add_rate_limited``, ``forget`` and ``done`` are plain methods, so they
can be called from synchronous callbacks running in the event loop (``add_after`` and
``add_rate_limited`` need a running loop to schedule their timers).

``run_workers`` runs a number of worker tasks that take keys from a queue and pass them to a
handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import structlog

from pequod.backoff import Backoff, FailureCounts
from pequod.kube.client import TRANSPORT_ERRORS, ApiError
from pequod.metrics import (
    WORK_IN_PROGRESS,
    WORKQUEUE_ADDS,
    WORKQUEUE_DEPTH,
    WORKQUEUE_QUEUE_DURATION,
    WORKQUEUE_RETRIES,
    WORKQUEUE_WORK_DURATION,
)

logger = structlog.get_logger(__name__)

Key = TypeVar("Key", bound=Hashable)


class QueueShutDown(Exception):
    """Raised by ``WorkQueue.get()`` once the queue is shut down and has no keys left."""


class WorkQueue(Generic[Key]):
    """A de-duplicating FIFO queue of keys with delayed and rate-limited adds.

    ``base_delay``, ``max_delay`` and ``jitter`` shape the backoff of ``add_rate_limited``: the
    n-th consecutive rate-limited add of a key (counting from 0) waits
    ``min(max_delay, base_delay * 2**n)`` seconds, stretched by a random factor in
    ``[1, 1 + jitter]``.

    After ``shut_down()``, new adds are ignored and delayed adds are cancelled, but keys already
    queued are still handed out; ``get()`` raises ``QueueShutDown`` once none are left.
    """

    def __init__(
        self,
        name: str,
        *,
        base_delay: float = 0.005,
        max_delay: float = 300.0,
        jitter: float = 0.1,
    ) -> None:
        if base_delay < 0 or max_delay < 0 or jitter < 0:
            raise ValueError("base_delay, max_delay and jitter must not be negative")
        self.name = name
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.jitter = jitter
        # Consecutive rate-limited adds per key, reset by forget().
        self._failures: FailureCounts[Key] = FailureCounts(Backoff(base_delay, max_delay, jitter))
        # Keys in the order they will be handed out.
        self._queue: deque[Key] = deque()
        # Keys that need processing: those in _queue and those added again while processing.
        self._dirty: set[Key] = set()
        # Keys handed out by get() and not yet marked done().
        self._processing: set[Key] = set()
        # Keys waiting for a delayed add: their deadline (event loop time) and timer.
        self._delayed: dict[Key, tuple[float, asyncio.TimerHandle]] = {}
        self._getters: deque[asyncio.Future[None]] = deque()
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._shut_down = False
        # For the metrics: when each queued key was queued, when each processing key started.
        self._queued_at: dict[Key, float] = {}
        self._started_at: dict[Key, float] = {}
        self._depth = WORKQUEUE_DEPTH.labels(name)
        WORK_IN_PROGRESS.queues.add(self)

    def __len__(self) -> int:
        """The number of keys waiting to be handed out (not processing, not delayed)."""
        return len(self._queue)

    def __repr__(self) -> str:
        return (
            f"WorkQueue({self.name!r}, queued={len(self._queue)}, "
            f"processing={len(self._processing)}, delayed={len(self._delayed)})"
        )

    @property
    def processing_count(self) -> int:
        """The number of keys handed out by ``get()`` and not yet marked ``done()``."""
        return len(self._processing)

    @property
    def delayed_count(self) -> int:
        """The number of keys waiting for a delayed add."""
        return len(self._delayed)

    @property
    def is_shut_down(self) -> bool:
        """Whether ``shut_down()`` has been called."""
        return self._shut_down

    def add(self, key: Key) -> None:
        """Queue ``key`` unless it is already waiting; if it is being processed, mark it dirty.

        A dirty key is queued again when ``done()`` is called for it. Ignored after shut down.
        """
        if self._shut_down or key in self._dirty:
            return
        self._dirty.add(key)
        WORKQUEUE_ADDS.labels(self.name).inc()
        if key in self._processing:
            return
        self._enqueue(key)

    def add_after(self, key: Key, delay: float) -> None:
        """Add ``key`` after ``delay`` seconds; at once if ``delay`` is not positive.

        If ``key`` is already waiting for a delayed add, the earlier of the two deadlines is
        kept. Ignored after shut down. Needs a running event loop.
        """
        if self._shut_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        pending = self._delayed.get(key)
        if pending is not None:
            pending_deadline, pending_timer = pending
            if pending_deadline <= deadline:
                return
            pending_timer.cancel()
        timer = loop.call_at(deadline, self._add_delayed, key)
        self._delayed[key] = (deadline, timer)

    def add_rate_limited(self, key: Key) -> None:
        """Add ``key`` after its backoff (``next_backoff`` plus jitter) and count one failure."""
        _, delay = self._failures.failed(key)
        WORKQUEUE_RETRIES.labels(self.name).inc()
        self.add_after(key, delay)

    def next_backoff(self, key: Key) -> float:
        """The delay, before jitter, that the next ``add_rate_limited(key)`` would wait.

        It is ``min(max_delay, base_delay * 2**failures(key))``; calling it changes nothing.
        """
        return self._failures.next_delay(key)

    def forget(self, key: Key) -> None:
        """Reset the failure count of ``key``, so its next backoff is ``base_delay`` again."""
        self._failures.forget(key)

    def failures(self, key: Key) -> int:
        """The number of rate-limited adds of ``key`` since it was last forgotten."""
        return self._failures.failures(key)

    async def get(self) -> Key:
        """Wait for the next key, in FIFO order, and mark it as being processed.

        The caller must call ``done(key)`` when it has finished with the key. Raises
        ``QueueShutDown`` once the queue is shut down and no keys are left.
        """
        while not self._queue:
            if self._shut_down:
                raise QueueShutDown(self.name)
            getter = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                with contextlib.suppress(ValueError):
                    self._getters.remove(getter)
                # Woken for a key but cancelled before taking it: pass the wake-up on.
                if self._queue and not getter.cancelled():
                    self._wake_next_getter()
                raise
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        now = time.monotonic()
        WORKQUEUE_QUEUE_DURATION.labels(self.name).observe(now - self._queued_at.pop(key, now))
        self._started_at[key] = now
        self._depth.set(len(self._queue))
        return key

    def done(self, key: Key) -> None:
        """Mark ``key`` as processed; if it was added meanwhile, queue it again now.

        Keys that are not being processed are ignored.
        """
        if key not in self._processing:
            return
        self._processing.discard(key)
        started = self._started_at.pop(key, None)
        if started is not None:
            WORKQUEUE_WORK_DURATION.labels(self.name).observe(time.monotonic() - started)
        if key in self._dirty:
            self._enqueue(key)
        self._notify_if_idle()

    def processing_started(self) -> dict[Key, float]:
        """When (monotonic time) each key being processed was handed out."""
        return dict(self._started_at)

    def shut_down(self) -> None:
        """Stop accepting keys, cancel delayed adds and wake every waiting ``get()``.

        Keys already queued are still handed out; after that ``get()`` raises ``QueueShutDown``.
        """
        self._shut_down = True
        for _deadline, timer in self._delayed.values():
            timer.cancel()
        self._delayed.clear()
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
        self._notify_if_idle()

    async def wait_idle(self) -> None:
        """Wait until no key is queued, delayed or being processed."""
        while not self._is_idle():
            waiter = asyncio.get_running_loop().create_future()
            self._idle_waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._idle_waiters:
                    self._idle_waiters.remove(waiter)

    def _enqueue(self, key: Key) -> None:
        self._queue.append(key)
        self._queued_at[key] = time.monotonic()
        self._depth.set(len(self._queue))
        self._wake_next_getter()

    def _add_delayed(self, key: Key) -> None:
        del self._delayed[key]
        self.add(key)

    def _wake_next_getter(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    def _is_idle(self) -> bool:
        return not self._queue and not self._processing and not self._delayed

    def _notify_if_idle(self) -> None:
        if not self._is_idle():
            return
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


async def run_workers(
    queue: WorkQueue[Key],
    handler: Callable[[Key], Awaitable[None]],
    *,
    concurrency: int,
) -> None:
    """Run ``concurrency`` workers that pass keys from ``queue`` to ``handler``.

    Each worker loops: take a key with ``get()``, await ``handler(key)``, then ``done(key)``. A
    key whose handler succeeds is forgotten (its backoff is reset); a key whose handler raises
    is logged and added again with ``add_rate_limited``, and the worker carries on (an API
    server away or busy, a transient error, is a warning with its message; anything else is
    an error with its traceback). Returns
    once the queue is shut down and the workers have finished the keys they were processing.
    Cancelling it cancels the workers.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, not {concurrency}")
    async with asyncio.TaskGroup() as workers:
        for index in range(concurrency):
            workers.create_task(_work(queue, handler), name=f"{queue.name}-worker-{index}")


async def _work(queue: WorkQueue[Key], handler: Callable[[Key], Awaitable[None]]) -> None:
    """One worker of ``run_workers``: process keys until the queue is shut down."""
    while True:
        try:
            key = await queue.get()
        except QueueShutDown:
            return
        try:
            await handler(key)
        except Exception as error:
            if _transient(error):
                logger.warning(
                    "work item failed, retrying",
                    queue=queue.name,
                    key=key,
                    error=f"{type(error).__name__}: {error}",
                    retry_in=round(queue.next_backoff(key), 3),
                )
            else:
                logger.exception("work item failed", queue=queue.name, key=key)
            queue.add_rate_limited(key)
        else:
            queue.forget(key)
        finally:
            queue.done(key)


def _transient(error: Exception) -> bool:
    """The API server unreachable, restarting or asking to retry (409 conflict on a stale
    resourceVersion, 429, 5xx): the next try will do, and a traceback would tell nothing."""
    if isinstance(error, ApiError):
        return error.transient
    return isinstance(error, TRANSPORT_ERRORS)
