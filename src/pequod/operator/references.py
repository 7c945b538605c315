"""The live objects instances read (``#Observe``): the objects they reference, and their own
nodes' objects. Looked up in informer caches (one per kind, started on first use; the own
nodes' are the label-filtered ones the graph controller shares) and followed, so an instance
renders again when an object it reads appears, changes or goes.

Where a reference may point is the Transform's to say: the instance's namespace, the
namespaces its ``allowedNamespaces`` lists, cluster-scoped kinds only with
``allowClusterScoped``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from pequod.api.ownership import MANAGED_SELECTOR, owned_by
from pequod.api.resource_graph import ResourceGraph, SourceRef
from pequod.graph.model import Node
from pequod.graph.validate import NamespacePolicy
from pequod.kube.discovery import UnknownKindError
from pequod.kube.informer import Informer, InformerEvent
from pequod.kube.manager import Manager
from pequod.kube.resources import ResourceType
from pequod.operator.serving import InstanceKey
from pequod.render.observe import Declaration, Reference

SYNC_TIMEOUT_SECONDS = 30.0
"""How long a first lookup waits for a new kind's informer to list (then it is retried)."""

InformerKey = tuple[ResourceType, str | None]
"""A kind, and the label selector of its informer (None: every object)."""
ObjectKey = tuple[InformerKey, str]


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
        self._informers: dict[InformerKey, Informer] = {}
        self._readers: dict[ObjectKey, set[InstanceKey]] = {}
        self._read_by: dict[InstanceKey, set[ObjectKey]] = {}

    async def resolve(
        self,
        key: InstanceKey,
        declaration: Declaration,
        policy: NamespacePolicy,
        graph: ResourceGraph | None,
        source: SourceRef,
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """The live object of each node the declaration reads, by node id (as the last graph
        ``graph`` names it; not yet there: left out), and each reference's, by reference name.
        Follows them for ``key`` (and stops following what it no longer reads). Raises
        :class:`ReferenceNotAllowed` or :class:`ReferenceNotFound`, naming every reference
        that is."""
        followed: set[ObjectKey] = set()
        nodes = await self._own_nodes(declaration, graph, source, followed)
        found: dict[str, dict[str, Any]] = {}
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
            followed.add(((rt, None), store_key))
            informer = await self._informer(rt, None)
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
        return nodes, found

    async def _own_nodes(
        self,
        declaration: Declaration,
        graph: ResourceGraph | None,
        source: SourceRef,
        followed: set[ObjectKey],
    ) -> dict[str, dict[str, Any]]:
        """The live objects of the nodes the declaration reads, from the informers of managed
        objects; an object not applied yet, or not this instance's, is left out."""
        found: dict[str, dict[str, Any]] = {}
        if graph is None:
            return found  # nothing applied yet
        for node_id, object_key in await self._node_objects(
            declaration, graph.spec.nodes, graph.namespace
        ):
            followed.add(object_key)
            (informer_key, store_key) = object_key
            live = (await self._informer(*informer_key)).get(store_key)
            # An observed node's object is not Pequod's: it is read whoever owns it.
            observed_only = informer_key[1] is None
            if live is not None and (observed_only or owned_by(live, source)):
                found[node_id] = live
        return found

    async def follow_nodes(
        self, key: InstanceKey, declaration: Declaration, nodes: tuple[Node, ...], namespace: str
    ) -> None:
        """Follows, for ``key``, the objects of the nodes a render about to be written reads:
        their first appearance, once the graph's controller applies them, brings the
        instance back to render with their values."""
        added = {k for _, k in await self._node_objects(declaration, nodes, namespace)}
        for informer_key, _ in added:
            await self._informer(*informer_key)
        self._follow(key, self._read_by.get(key, set()) | added)

    async def _node_objects(
        self, declaration: Declaration, nodes: tuple[Node, ...], namespace: str
    ) -> list[tuple[str, ObjectKey]]:
        """Per node the declaration reads: its id, and where its object is in the informers
        of managed objects (of every object, for a node adopted with Observe)."""
        paths = declaration.node_paths()
        found: list[tuple[str, ObjectKey]] = []
        for node in nodes:
            if node.id not in paths:
                continue
            obj = node.object
            try:
                rt = await self.manager.discovery.resource_type(obj["apiVersion"], obj["kind"])
            except UnknownKindError:
                continue  # the graph's controller says so on the node
            name = obj["metadata"]["name"]
            object_namespace = obj["metadata"].get("namespace") or namespace
            store_key = f"{object_namespace}/{name}" if rt.namespaced else name
            # The object of a node adopted with Observe never carries Pequod's labels.
            selector = None if node.observe_only else MANAGED_SELECTOR
            found.append((node.id, ((rt, selector), store_key)))
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

    async def _informer(self, rt: ResourceType, selector: str | None) -> Informer:
        key = (rt, selector)
        informer = self._informers.get(key)
        if informer is None:
            informer = self._informers[key] = self.manager.informer(rt, label_selector=selector)
            informer.add_handler(lambda event: self._changed(key, event), replay=False)
        if not informer.synced.is_set():
            # A transient failure: the work queue tries the instance again.
            await asyncio.wait_for(informer.synced.wait(), SYNC_TIMEOUT_SECONDS)
        return informer

    def _changed(self, key: InformerKey, event: InformerEvent) -> None:
        metadata = event.object["metadata"]
        namespace = metadata.get("namespace")
        store_key = f"{namespace}/{metadata['name']}" if namespace else metadata["name"]
        for reader in list(self._readers.get((key, store_key), ())):
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
