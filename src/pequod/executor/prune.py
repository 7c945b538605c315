"""Removing a graph's objects: the prune of those that left the graph after a pass applied it in
full, the ordered deletion of all of them when the graph goes (dependents before their
dependencies), and the search for objects labelled with the graph's instance that no inventory
lists (a pass killed between an apply and the status write that records it leaves those)."""

from __future__ import annotations

from collections.abc import Iterable

from pequod.api.names import (
    FIELD_MANAGER,
    INSTANCE_UID_LABEL,
    NODE_ID_ANNOTATION,
    ORPHANED_ANNOTATION,
    PRUNE_ANNOTATION,
)
from pequod.api.ownership import owned_by
from pequod.api.resource_graph import InventoryEntry, ResourceGraph, merged
from pequod.executor.confine import writable_namespaces
from pequod.executor.live import LiveObjects
from pequod.graph.model import Node
from pequod.kube.client import ApiError, KubeClient
from pequod.kube.discovery import Discovery, UnknownKindError


class Pruner:
    def __init__(self, client: KubeClient, discovery: Discovery, live: LiveObjects) -> None:
        self.client = client
        self.discovery = discovery
        self.live = live

    async def labelled(
        self, graph: ResourceGraph, known: list[InventoryEntry]
    ) -> list[InventoryEntry]:
        """The objects carrying the graph's instance-uid label, of the kinds its nodes and
        ``known`` name, in the namespaces it may write to, with the deletion policy of their
        node; of a node no longer in the graph, those it let go (orphaned, or annotated
        pequod.io/prune=disabled) are not the graph's any more."""
        uid = graph.spec.source.uid
        if not uid:
            return []
        policies = {n.id: n.deletion_policy for n in graph.spec.nodes}
        kinds = {(n.object["apiVersion"], n.object["kind"]) for n in graph.spec.nodes}
        kinds |= {(e.api_version, e.kind) for e in known}
        namespaces = writable_namespaces(graph)
        found: list[InventoryEntry] = []
        for api_version, kind in sorted(kinds):
            try:
                rt = await self.discovery.resource_type(api_version, kind)
            except UnknownKindError:
                continue
            for namespace in namespaces if rt.namespaced else [None]:
                listing = await self.client.list(
                    rt, namespace, label_selector=f"{INSTANCE_UID_LABEL}={uid}"
                )
                for item in listing.get("items") or []:
                    metadata = item["metadata"]
                    annotations = metadata.get("annotations") or {}
                    node_id = annotations.get(NODE_ID_ANNOTATION, "")
                    if node_id not in policies and (
                        ORPHANED_ANNOTATION in annotations
                        or annotations.get(PRUNE_ANNOTATION) == "disabled"
                    ):
                        continue
                    found.append(
                        InventoryEntry(
                            api_version=api_version,
                            kind=kind,
                            namespace=metadata["namespace"] if rt.namespaced else None,
                            name=metadata["name"],
                            uid=metadata.get("uid", ""),
                            node_id=node_id,
                            deletion_policy=policies.get(node_id, "Delete"),
                        )
                    )
        return found

    @staticmethod
    def prunable(graph: ResourceGraph, current: list[InventoryEntry]) -> list[InventoryEntry]:
        """What a prune after ``current`` would delete of the status inventory (a dry run)."""
        keep = {e.key for e in current}
        return [
            entry
            for entry in graph.status.inventory
            if entry.key not in keep and not entry.orphaned_on_delete
        ]

    async def prune(
        self,
        graph: ResourceGraph,
        recorded: list[InventoryEntry],
        current: list[InventoryEntry],
    ) -> tuple[list[InventoryEntry], list[InventoryEntry]]:
        """Removes the objects of ``recorded`` that ``current`` does not name; returns those
        deleted (or already gone) and those left in place."""
        keep = {e.key for e in current}
        pruned: list[InventoryEntry] = []
        skipped: list[InventoryEntry] = []
        for entry in recorded:
            if entry.key in keep:
                continue
            (pruned if await self._remove(graph, entry) else skipped).append(entry)
        return pruned, skipped

    async def _remove(self, graph: ResourceGraph, entry: InventoryEntry) -> bool:
        """Deletes an inventory entry's object unless it is orphaned; True when it was deleted
        (or already gone). An orphaned object is marked so (ORPHANED_ANNOTATION): it keeps its
        labels, and the search for objects no inventory lists must not take it back."""
        try:
            rt = await self.discovery.resource_type(entry.api_version, entry.kind)
        except UnknownKindError:
            return not entry.orphaned_on_delete  # the kind is gone, and its objects
        live = await self.live.get(rt, entry.namespace, entry.name)
        source = graph.spec.source
        if entry.orphaned_on_delete:
            if (
                live is not None
                and owned_by(live, source)
                and ORPHANED_ANNOTATION not in (live["metadata"].get("annotations") or {})
            ):
                try:
                    await self.client.merge_patch(
                        rt,
                        entry.name,
                        entry.namespace,
                        {"metadata": {"annotations": {ORPHANED_ANNOTATION: "true"}}},
                        field_manager=FIELD_MANAGER,
                    )
                except ApiError as error:
                    if not error.not_found:
                        raise
            return False
        if live is None:
            return True
        if (
            not owned_by(live, source)
            or (live["metadata"].get("annotations") or {}).get(PRUNE_ANNOTATION) == "disabled"
        ):
            return False
        await self.client.delete(rt, entry.name, entry.namespace, uid=live["metadata"]["uid"])
        return True

    async def delete(
        self, graph: ResourceGraph, remembered: list[InventoryEntry]
    ) -> tuple[bool, str]:
        """Deletes the graph's objects, dependents before their dependencies, one layer at a
        time, waiting for each layer to be gone. ``remembered``: what this process's last pass
        over the graph applied. Returns (done, what it waits for)."""
        nodes = graph.spec.nodes
        # The inventory may miss objects (a pass killed before its status write): those
        # labelled with the instance are found too; one that belongs to no node of the graph
        # goes first.
        entries = merged(list(graph.status.inventory), remembered)
        entries = merged(entries, await self.labelled(graph, entries))
        node_ids = {n.id for n in nodes}
        # An object a node observes is never deleted, even one Pequod had created before.
        observed = {n.id for n in nodes if n.observe_only}
        by_node: dict[str, list[InventoryEntry]] = {}
        for entry in entries:
            if entry.node_id in observed:
                continue
            by_node.setdefault(entry.node_id if entry.node_id in node_ids else "", []).append(entry)
        for layer in [[""], *reverse_layers(nodes)]:
            waiting: list[str] = []
            for entry in [e for node_id in layer for e in by_node.get(node_id, [])]:
                if entry.orphaned_on_delete:
                    continue
                try:
                    rt = await self.discovery.resource_type(entry.api_version, entry.kind)
                except UnknownKindError:
                    continue
                live = await self.client.get(rt, entry.name, entry.namespace)
                if live is None or not owned_by(live, graph.spec.source):
                    continue
                if not live["metadata"].get("deletionTimestamp"):
                    await self.client.delete(
                        rt,
                        entry.name,
                        entry.namespace,
                        propagation="Background",
                        uid=live["metadata"]["uid"],
                    )
                waiting.append(entry.describe())
            if waiting:
                return False, f"waiting for {', '.join(waiting)} to be deleted"
        return True, ""


def reverse_layers(nodes: Iterable[Node]) -> list[list[str]]:
    """Node ids in layers: first those nothing depends on, last the roots."""
    nodes = list(nodes)
    dependents: dict[str, set[str]] = {n.id: set() for n in nodes}
    for node in nodes:
        for dependency in node.depends_on:
            dependents.setdefault(dependency, set()).add(node.id)
    layers: list[list[str]] = []
    remaining = {n.id for n in nodes}
    while remaining:
        layer = sorted(i for i in remaining if not (dependents[i] & remaining))
        if not layer:  # a cycle cannot pass the render checks; stay safe regardless
            layer = sorted(remaining)
        layers.append(layer)
        remaining -= set(layer)
    return layers
