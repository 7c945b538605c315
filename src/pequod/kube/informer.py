"""An informer: list, then watch from the list's resourceVersion, keeping an in-memory store and
telling handlers what changed.

- Bookmarks keep the resume point fresh without events.
- ``410 Gone`` (the resume point was compacted away): list again and emit the differences
  against the store, deletes it missed included.
- A stream silent for longer than the inactivity timeout is treated as dead and reopened.
- Other failures are retried with exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp
import structlog

from pequod.backoff import Backoff, FailureCounts
from pequod.kube.client import ApiError, KubeClient
from pequod.kube.resources import ResourceType, object_key

logger = structlog.get_logger(__name__)

EventType = Literal["ADDED", "MODIFIED", "DELETED", "RESYNC"]


@dataclass(frozen=True)
class InformerEvent:
    type: EventType
    object: dict[str, Any]
    old: dict[str, Any] | None = None


Handler = Callable[[InformerEvent], None]


# The list-and-watch loop's retries: one sequence of failures per informer.
RETRY_BACKOFF = Backoff(base=0.2, cap=30.0, jitter=0.2)
Retries = FailureCounts[str]
_LOOP = "list-and-watch"


class Informer:
    def __init__(
        self,
        client: KubeClient,
        resource_type: ResourceType,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        watch_timeout_seconds: int = 300,
        inactivity_timeout: float = 330.0,
        resync_period: float | None = None,
    ) -> None:
        self.client = client
        self.resource_type = resource_type
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.watch_timeout_seconds = watch_timeout_seconds
        self.inactivity_timeout = inactivity_timeout
        self.resync_period = resync_period
        self.store: dict[str, dict[str, Any]] = {}
        self.synced = asyncio.Event()
        self.relists = 0
        self._handlers: list[Handler] = []
        self._resource_version = ""

    def add_handler(self, handler: Handler, *, replay: bool = True) -> None:
        """Registers ``handler``; with ``replay`` it first sees every object already stored."""
        self._handlers.append(handler)
        if replay:
            for obj in list(self.store.values()):
                self._dispatch_one(handler, InformerEvent("ADDED", obj))

    def get(self, key: str) -> dict[str, Any] | None:
        return self.store.get(key)

    def list(self) -> list[dict[str, Any]]:
        return list(self.store.values())

    async def run(self, *, resume: bool = False) -> None:
        """Runs until cancelled. With ``resume``, an informer that ran before watches on from
        where it stopped instead of listing first (a 410 Gone then makes it list again)."""
        backoff: Retries = FailureCounts(RETRY_BACKOFF)
        resync = (
            asyncio.create_task(self._resync_loop(self.resync_period))
            if self.resync_period
            else None
        )
        try:
            while True:
                try:
                    if resume and self._resource_version:
                        resume = False
                    else:
                        await self._list()
                    backoff.forget(_LOOP)
                    await self._watch_until_expired(backoff)
                    self.relists += 1
                except (ApiError, aiohttp.ClientError, OSError, TimeoutError) as error:
                    _, delay = backoff.failed(_LOOP)
                    logger.warning(
                        "list failed, retrying",
                        resource=str(self.resource_type),
                        error=str(error),
                        retry_in=round(delay, 2),
                    )
                    await asyncio.sleep(delay)
        finally:
            if resync:
                resync.cancel()

    async def _list(self) -> None:
        listing = await self.client.list(
            self.resource_type,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
        )
        self._resource_version = listing["metadata"]["resourceVersion"]
        kind = self.resource_type.kind
        api_version = self.resource_type.api_version
        fresh = {}
        for item in listing.get("items", []):
            item.setdefault("kind", kind)
            item.setdefault("apiVersion", api_version)
            _strip(item)
            fresh[object_key(item)] = item
        self._replace(fresh)
        self.synced.set()

    def _replace(self, fresh: dict[str, dict[str, Any]]) -> None:
        """Makes the store equal to ``fresh`` and emits what changed."""
        old_store = self.store
        self.store = fresh
        for key, old in old_store.items():
            if key not in fresh:
                self._dispatch(InformerEvent("DELETED", old))
        for key, obj in fresh.items():
            previous = old_store.get(key)
            if previous is None:
                self._dispatch(InformerEvent("ADDED", obj))
            elif _version(previous) != _version(obj):
                self._dispatch(InformerEvent("MODIFIED", obj, previous))

    async def _watch_until_expired(self, backoff: Retries) -> None:
        """Watches from the last resourceVersion; returns on 410 Gone (time to list again)."""
        while True:
            try:
                async for event in self.client.watch(
                    self.resource_type,
                    self.namespace,
                    self._resource_version,
                    label_selector=self.label_selector,
                    field_selector=self.field_selector,
                    timeout_seconds=self.watch_timeout_seconds,
                    inactivity_timeout=self.inactivity_timeout,
                ):
                    self._apply(event)
                backoff.forget(_LOOP)
            except ApiError as error:
                if error.gone:
                    logger.info(
                        "watch expired, listing again",
                        resource=str(self.resource_type),
                        resource_version=self._resource_version,
                    )
                    return
                await self._pause(backoff, error)
            except TimeoutError:
                logger.warning(
                    "watch stream silent for too long, reopening",
                    resource=str(self.resource_type),
                )
            except (aiohttp.ClientError, OSError) as error:
                await self._pause(backoff, error)

    async def _pause(self, backoff: Retries, error: Exception) -> None:
        _, delay = backoff.failed(_LOOP)
        logger.warning(
            "watch failed, retrying",
            resource=str(self.resource_type),
            error=str(error),
            retry_in=round(delay, 2),
        )
        await asyncio.sleep(delay)

    def _apply(self, event: dict[str, Any]) -> None:
        obj = event["object"]
        self._resource_version = obj.get("metadata", {}).get(
            "resourceVersion", self._resource_version
        )
        if event["type"] == "BOOKMARK":
            return
        obj.setdefault("kind", self.resource_type.kind)
        obj.setdefault("apiVersion", self.resource_type.api_version)
        _strip(obj)
        key = object_key(obj)
        if event["type"] == "DELETED":
            self.store.pop(key, None)
            self._dispatch(InformerEvent("DELETED", obj))
            return
        previous = self.store.get(key)
        self.store[key] = obj
        if previous is None:
            self._dispatch(InformerEvent("ADDED", obj))
        else:
            self._dispatch(InformerEvent("MODIFIED", obj, previous))

    async def _resync_loop(self, period: float) -> None:
        while True:
            await asyncio.sleep(period)
            self.resync()

    def resync(self) -> None:
        """Hands every cached object to the handlers again (client-go's resync)."""
        for obj in list(self.store.values()):
            self._dispatch(InformerEvent("RESYNC", obj))

    def _dispatch(self, event: InformerEvent) -> None:
        for handler in list(self._handlers):
            self._dispatch_one(handler, event)

    def _dispatch_one(self, handler: Handler, event: InformerEvent) -> None:
        try:
            handler(event)
        except Exception:
            logger.exception("informer handler failed", resource=str(self.resource_type))


def _strip(obj: dict[str, Any]) -> None:
    """Cached objects go without managedFields (controller-runtime's default transform): they
    are often the largest part of an object and no reader of the cache needs them; whoever
    does reads the object from the API server."""
    obj.get("metadata", {}).pop("managedFields", None)


def _version(obj: dict[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("resourceVersion", ""))
