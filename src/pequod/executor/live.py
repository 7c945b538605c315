"""The live objects a pass reads: what the executor needs of them (:class:`LiveObjects`) and the
cache that serves them from label-filtered informers (:class:`ManagedObjects`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from pequod.api.ownership import MANAGED_SELECTOR
from pequod.kube.client import KubeClient
from pequod.kube.informer import Informer, InformerEvent
from pequod.kube.manager import Manager
from pequod.kube.resources import ResourceType


class LiveObjects(Protocol):
    async def get(
        self, rt: ResourceType, namespace: str | None, name: str, *, cached_read: bool = False
    ) -> dict[str, Any] | None:
        """The live object, or None when it does not exist."""
        ...

    def watch(self, rt: ResourceType) -> None:
        """Starts following the managed objects of ``rt`` (the cache, and the changes that
        call for another pass)."""
        ...

    def written(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """Pequod just wrote ``obj`` (as the API server returned it)."""
        ...


class ManagedObjects:
    """Live objects Pequod applied, from label-filtered informers (one per kind, started on
    first use); a lookup the cache cannot answer yet goes to the API server. Each change of
    one, except the echo of Pequod's own write, is passed to ``on_change``."""

    def __init__(
        self, client: KubeClient, manager: Manager, on_change: Callable[[InformerEvent], None]
    ) -> None:
        self.client = client
        self.manager = manager
        self.on_change = on_change
        self._informers: dict[ResourceType, Informer] = {}
        # The resourceVersion each object had after Pequod's own last write to it: the watch
        # event that echoes that write tells a pass nothing it did not already see.
        self._written: dict[tuple[ResourceType, str], str] = {}

    def watch(self, rt: ResourceType) -> None:
        if rt in self._informers:
            return
        informer = self.manager.informer(rt, label_selector=MANAGED_SELECTOR)
        informer.add_handler(lambda event: self._changed(rt, event))
        self._informers[rt] = informer

    def _changed(self, rt: ResourceType, event: InformerEvent) -> None:
        metadata = event.object["metadata"]
        key = (rt, _object_key(metadata.get("namespace"), metadata["name"]))
        written = self._written.pop(key, None)
        if event.type != "DELETED" and written == metadata.get("resourceVersion"):
            return
        self.on_change(event)

    def written(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        metadata = obj["metadata"]
        key = (rt, _object_key(metadata.get("namespace"), metadata["name"]))
        self._written[key] = metadata.get("resourceVersion", "")

    async def get(
        self, rt: ResourceType, namespace: str | None, name: str, *, cached_read: bool = False
    ) -> dict[str, Any] | None:
        informer = self._informers.get(rt)
        if informer is not None and informer.synced.is_set():
            cached = informer.get(_object_key(namespace, name))
            if cached is not None:
                return cached
        return await self.client.get(rt, name, namespace, cached_read=cached_read)


def _object_key(namespace: str | None, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name
