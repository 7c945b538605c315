"""A controller: a work queue of keys, a reconcile function, bounded concurrency, and sources
(informers) that turn events into keys (controller-runtime's shape)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

import structlog

from pequod.kube.informer import Informer, InformerEvent
from pequod.kube.workqueue import WorkQueue, run_workers
from pequod.metrics import (
    CONTROLLER_RUNTIME_RECONCILE_ERRORS,
    CONTROLLER_RUNTIME_RECONCILE_TIME,
    CONTROLLER_RUNTIME_RECONCILE_TOTAL,
    RECONCILE_DURATION,
    RECONCILE_TOTAL,
)

Key = TypeVar("Key", bound=Hashable)
logger = structlog.get_logger(__name__)


def spec_or_metadata_changed(event: InformerEvent) -> bool:
    """controller-runtime's GenerationChangedPredicate, with the metadata a reconcile reads:
    lets through everything but updates that changed only the status (the reconciler's own
    status writes, which would otherwise bring every object back once more)."""
    if event.type != "MODIFIED" or event.old is None:
        return True
    new, old = event.object["metadata"], event.old["metadata"]
    return any(
        new.get(field) != old.get(field)
        for field in (
            "generation",
            "labels",
            "annotations",
            "finalizers",
            "deletionTimestamp",
            "ownerReferences",
        )
    )


@dataclass(frozen=True)
class Result:
    """What a reconcile asks for next: nothing, or another look after ``requeue_after`` s."""

    requeue_after: float | None = None


DONE = Result()


class Controller(Generic[Key]):
    def __init__(
        self,
        name: str,
        reconcile: Callable[[Key], Awaitable[Result]],
        *,
        concurrency: int = 4,
        log_context: Callable[[Key], dict[str, str]] | None = None,
    ) -> None:
        self.name = name
        self.log_context = log_context or (lambda key: {"key": str(key)})
        self.queue: WorkQueue[Key] = WorkQueue(name)
        self.concurrency = concurrency
        self._reconcile = reconcile

    def enqueue(self, key: Key) -> None:
        self.queue.add(key)

    def watch(
        self,
        informer: Informer,
        keys_of: Callable[[InformerEvent], Iterable[Key]],
        *,
        predicate: Callable[[InformerEvent], bool] | None = None,
    ) -> Callable[[InformerEvent], None]:
        """Enqueues the keys ``keys_of`` maps each event of ``informer`` to, for the events
        ``predicate`` lets through. Returns the handler (to remove it when the source goes)."""

        def handler(event: InformerEvent) -> None:
            if predicate is not None and not predicate(event):
                return
            for key in keys_of(event):
                self.queue.add(key)

        informer.add_handler(handler)
        return handler

    async def _handle(self, key: Key) -> None:
        """One reconcile, with its log context (controller, key, reconcile id) and metrics."""
        reconcile_id = uuid.uuid4().hex[:12]
        with structlog.contextvars.bound_contextvars(
            controller=self.name, reconcile_id=reconcile_id, **self.log_context(key)
        ):
            started = time.monotonic()
            outcome = "error"
            try:
                result = await self._reconcile(key)
                outcome = "success" if result.requeue_after is None else "requeue_after"
            finally:
                elapsed = time.monotonic() - started
                RECONCILE_TOTAL.labels(self.name, outcome).inc()
                RECONCILE_DURATION.labels(self.name).observe(elapsed)
                CONTROLLER_RUNTIME_RECONCILE_TOTAL.labels(self.name, outcome).inc()
                CONTROLLER_RUNTIME_RECONCILE_TIME.labels(self.name).observe(elapsed)
                if outcome == "error":
                    CONTROLLER_RUNTIME_RECONCILE_ERRORS.labels(self.name).inc()
            self.queue.forget(key)
            if result.requeue_after is not None:
                logger.debug("requeue", after=result.requeue_after)
                self.queue.add_after(key, result.requeue_after)

    async def run(self) -> None:
        await run_workers(self.queue, self._handle, concurrency=self.concurrency)
