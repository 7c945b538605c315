"""The objects instances reference (``#Observe.references``): looked up in informer caches (one
per referenced kind, started on first use) and followed, so an instance renders again when an
object it reads appears, changes or goes.

Where a reference may point is the Transform's to say: the instance's namespace, the
namespaces its ``allowedNamespaces`` lists, cluster-scoped kinds only with
``allowClusterScoped``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pequod.graph.validate import NamespacePolicy
from pequod.kube.discovery import UnknownKindError
from pequod.kube.informer import Informer, InformerEvent
from pequod.kube.manager import Manager
from pequod.kube.resources import ResourceType
from pequod.operator.serving import InstanceKey
from pequod.render.observe import Declaration, Reference

SYNC_TIMEOUT_SECONDS = 30.0
"""How long a first lookup waits for a new kind's informer to list (then it is retried)."""

ObjectKey = tuple[ResourceType, str]


class ReferenceProblem(Exception):
    """A reference the instance cannot read now: ``reason`` is the condition's."""

    reason = "ReferenceProblem"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class ReferenceNotFound(ReferenceProblem):
    """Not there (yet): the instance renders once it appears."""

    reason = "ReferenceNotFound"


class ReferenceNotAllowed(ReferenceProblem):
    """Somewhere the Transform does not let its instances read."""

    reason = "ReferenceNotAllowed"


class ReferencedObjects:
    """Resolves instances' references and brings an instance back (``on_change``) when an
    object it references changes."""

    def __init__(self, manager: Manager, on_change: Callable[[InstanceKey], None]) -> None:
        self.manager = manager
        self.on_change = on_change
        self._informers: dict[ResourceType, Informer] = {}
        self._readers: dict[ObjectKey, set[InstanceKey]] = {}
        self._read_by: dict[InstanceKey, set[ObjectKey]] = {}

    async def resolve(
        self, key: InstanceKey, declaration: Declaration, policy: NamespacePolicy
    ) -> dict[str, dict[str, Any]]:
        """Each reference's live object, by reference name. Follows them for ``key`` (and
        stops following what it no longer references). Raises :class:`ReferenceNotAllowed`
        or :class:`ReferenceNotFound`, naming every reference that is."""
        found: dict[str, dict[str, Any]] = {}
        followed: set[ObjectKey] = set()
        missing: list[str] = []
        refused: list[str] = []
        for reference in declaration.references:
            try:
                rt = await self.manager.discovery.resource_type(
                    reference.api_version, reference.kind
                )
            except UnknownKindError:
                missing.append(
                    f"{reference.name}: {reference.describe()} (the API server does not "
                    f"serve {reference.kind} in {reference.api_version})"
                )
                continue
            problem = _not_allowed(reference, rt, policy)
            if problem:
                refused.append(f"{reference.name}: {problem}")
                continue
            store_key = _store_key(rt, reference)
            followed.add((rt, store_key))
            informer = await self._informer(rt)
            obj = informer.get(store_key)
            if obj is None:
                missing.append(f"{reference.name}: {_where(reference, rt)} not found")
            else:
                found[reference.name] = obj
        self._follow(key, followed)
        if refused:
            raise ReferenceNotAllowed("; ".join(refused))
        if missing:
            raise ReferenceNotFound("; ".join(missing))
        return found

    def forget(self, key: InstanceKey) -> None:
        """Stops following ``key``'s references (it references nothing now, or is gone)."""
        self._follow(key, set())

    def _follow(self, key: InstanceKey, objects: set[ObjectKey]) -> None:
        previous = self._read_by.pop(key, set())
        for gone in previous - objects:
            readers = self._readers.get(gone)
            if readers is not None:
                readers.discard(key)
                if not readers:
                    del self._readers[gone]
        for added in objects:
            self._readers.setdefault(added, set()).add(key)
        if objects:
            self._read_by[key] = objects

    async def _informer(self, rt: ResourceType) -> Informer:
        informer = self._informers.get(rt)
        if informer is None:
            informer = self._informers[rt] = self.manager.informer(rt)
            informer.add_handler(lambda event: self._changed(rt, event), replay=False)
        if not informer.synced.is_set():
            # A transient failure: the work queue tries the instance again.
            await asyncio.wait_for(informer.synced.wait(), SYNC_TIMEOUT_SECONDS)
        return informer

    def _changed(self, rt: ResourceType, event: InformerEvent) -> None:
        metadata = event.object["metadata"]
        namespace = metadata.get("namespace")
        store_key = f"{namespace}/{metadata['name']}" if namespace else metadata["name"]
        for reader in list(self._readers.get((rt, store_key), ())):
            self.on_change(reader)


def _store_key(rt: ResourceType, reference: Reference) -> str:
    if rt.namespaced:
        return f"{reference.namespace}/{reference.object_name}"
    return reference.object_name


def _where(reference: Reference, rt: ResourceType) -> str:
    if rt.namespaced:
        return f"{reference.kind} {reference.namespace}/{reference.object_name}"
    return f"{reference.kind} {reference.object_name}"


def _not_allowed(reference: Reference, rt: ResourceType, policy: NamespacePolicy) -> str:
    if not rt.namespaced:
        if policy.allow_cluster_scoped:
            return ""
        return (
            f"{reference.kind} {reference.object_name} is cluster-scoped, and the Transform "
            "does not allow cluster-scoped objects (spec.allowClusterScoped)"
        )
    if policy.allows(reference.namespace):
        return ""
    return (
        f"{_where(reference, rt)} is in namespace {reference.namespace!r}, but this instance "
        f"may only read objects in {policy.instance_namespace!r} (the Transform's "
        "spec.allowedNamespaces can allow more)"
    )
