"""The manager: owns the client, the shared informers and the controllers; starts informers
(also at runtime, for kinds that appear later), waits for their caches, runs the controllers
and stops everything cleanly."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import structlog

from pequod.kube.client import KubeClient
from pequod.kube.controller import Controller
from pequod.kube.discovery import Discovery
from pequod.kube.informer import Informer
from pequod.kube.resources import ResourceType

logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class InformerKey:
    resource_type: ResourceType
    namespace: str | None = None
    label_selector: str | None = None
    field_selector: str | None = None


class Manager:
    def __init__(self, client: KubeClient, *, resync_period: float | None = None) -> None:
        self.client = client
        self.discovery = Discovery(client)
        self.resync_period = resync_period
        self._informers: dict[InformerKey, tuple[Informer, asyncio.Task[None] | None]] = {}
        self._controllers: list[Controller[object]] = []
        self._controller_tasks: list[asyncio.Task[None]] = []
        self._running = False
        self.stopping = asyncio.Event()
        self.synced = asyncio.Event()
        """Set once every informer has listed and the controllers run."""

    # -- informers -------------------------------------------------------------------------

    def informer(
        self,
        resource_type: ResourceType,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Informer:
        """The shared informer for this selection; started now if the manager runs."""
        key = InformerKey(resource_type, namespace, label_selector, field_selector)
        if key in self._informers:
            return self._informers[key][0]
        informer = Informer(
            self.client,
            resource_type,
            namespace=namespace,
            label_selector=label_selector,
            field_selector=field_selector,
            resync_period=self.resync_period,
        )
        task = self._start_informer(informer) if self._running else None
        self._informers[key] = (informer, task)
        return informer

    async def remove_informer(
        self,
        resource_type: ResourceType,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> None:
        """Stops watching (e.g. the kind of a deleted Transform)."""
        entry = self._informers.pop(
            InformerKey(resource_type, namespace, label_selector, field_selector), None
        )
        if entry and entry[1]:
            entry[1].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await entry[1]

    def _start_informer(self, informer: Informer) -> asyncio.Task[None]:
        return asyncio.create_task(informer.run(), name=f"informer {informer.resource_type}")

    def resync(self) -> None:
        """Every informer hands its whole cache to its handlers again, now."""
        for informer, _ in list(self._informers.values()):
            informer.resync()
        logger.info("full resync", informers=len(self._informers))

    @property
    def informer_count(self) -> int:
        return len(self._informers)

    # -- controllers -----------------------------------------------------------------------

    def add_controller(self, controller: Controller[object]) -> None:
        self._controllers.append(controller)
        if self._running:
            self._controller_tasks.append(asyncio.create_task(controller.run()))

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self, *, sync_timeout: float = 120.0) -> None:
        """Starts the informers, waits until each has listed once, then the controllers."""
        self._running = True
        for key, (informer, task) in list(self._informers.items()):
            if task is None:
                self._informers[key] = (informer, self._start_informer(informer))
        async with asyncio.timeout(sync_timeout):
            await asyncio.gather(*(i.synced.wait() for i, _ in self._informers.values()))
        logger.info("caches synced", informers=len(self._informers))
        for controller in self._controllers:
            self._controller_tasks.append(
                asyncio.create_task(controller.run(), name=f"controller {controller.name}")
            )
        self.synced.set()

    async def stop(self, *, grace_period: float = 10.0) -> None:
        """Stops taking work, lets in-flight reconciles finish (up to the grace period), then
        cancels what is left. Reconciles are idempotent, so an abandoned one is redone by the
        next run."""
        self.stopping.set()
        for controller in self._controllers:
            controller.queue.shut_down()
        if self._controller_tasks:
            _, pending = await asyncio.wait(self._controller_tasks, timeout=grace_period)
            if pending:
                logger.warning(
                    "in-flight work abandoned after the grace period",
                    controllers=[t.get_name() for t in pending],
                )
                dump_tasks()
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        informer_tasks = [t for _, t in self._informers.values() if t is not None]
        for informer_task in informer_tasks:
            informer_task.cancel()
        await asyncio.gather(*informer_tasks, return_exceptions=True)
        self._running = False
        logger.info("manager stopped")


def dump_tasks() -> None:
    """Logs where every asyncio task waits (on SIGUSR1): what a stuck operator is waiting on."""
    for task in asyncio.all_tasks():
        frames: list[str] = []
        awaitable: Any = task.get_coro()
        while awaitable is not None and len(frames) < 30:
            frame = getattr(awaitable, "cr_frame", None) or getattr(awaitable, "ag_frame", None)
            if frame is not None:
                file = frame.f_code.co_filename.rsplit("/", 1)[-1]
                frames.append(f"{frame.f_code.co_name} ({file}:{frame.f_lineno})")
            awaitable = getattr(awaitable, "cr_await", None) or getattr(awaitable, "ag_await", None)
        logger.info("task", name=task.get_name(), stack=" -> ".join(frames) or "-")
