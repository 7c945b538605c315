"""A controller: a work queue of keys, a reconcile function, bounded concurrency, and sources
(informers) that turn events into keys (controller-runtime's shape)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

import structlog

from pequod.kube.informer import Informer, InformerEvent
from pequod.kube.workqueue import WorkQueue, run_workers

Key = TypeVar("Key", bound=Hashable)
logger = structlog.get_logger(__name__)


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
    ) -> None:
        self.name = name
        self.queue: WorkQueue[Key] = WorkQueue(name)
        self.concurrency = concurrency
        self._reconcile = reconcile

    def enqueue(self, key: Key) -> None:
        self.queue.add(key)

    def watch(
        self, informer: Informer, keys_of: Callable[[InformerEvent], Iterable[Key]]
    ) -> Callable[[InformerEvent], None]:
        """Enqueues the keys ``keys_of`` maps each event of ``informer`` to. Returns the handler
        (to remove it again when the source goes away)."""

        def handler(event: InformerEvent) -> None:
            for key in keys_of(event):
                self.queue.add(key)

        informer.add_handler(handler)
        return handler

    async def _handle(self, key: Key) -> None:
        log = logger.bind(controller=self.name, key=str(key))
        result = await self._reconcile(key)
        self.queue.forget(key)
        if result.requeue_after is not None:
            log.debug("requeue", after=result.requeue_after)
            self.queue.add_after(key, result.requeue_after)

    async def run(self) -> None:
        await run_workers(self.queue, self._handle, concurrency=self.concurrency)
