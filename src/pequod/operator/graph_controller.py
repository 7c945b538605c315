"""The ResourceGraph controller: runs the executor on each graph, writes the graph's status,
and on deletion removes the objects in reverse dependency order before letting the graph go.

A graph deleted while its instance lives on (the admission policy not installed, a restore from
a backup, a stray ``kubectl delete``) is not the instance's deletion: the graph goes, its objects
stay, and the graph the instance controller writes in its place adopts them (they carry the
instance's uid) without re-creating or restarting anything."""

from __future__ import annotations

import collections
from typing import Any

import structlog

from pequod.api.names import (
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    RESOURCE_GRAPH_FINALIZER,
)
from pequod.api.ownership import graph_of
from pequod.api.resources import RESOURCE_GRAPHS
from pequod.executor.run import PHASES, GraphExecutor, PassResult
from pequod.kube.client import KubeClient
from pequod.kube.conditions import set_condition
from pequod.kube.controller import DONE, Controller, Result, spec_or_metadata_changed
from pequod.kube.discovery import UnknownKindError
from pequod.kube.informer import Informer, InformerEvent
from pequod.kube.manager import Manager
from pequod.kube.resources import NAMESPACES, ResourceType
from pequod.kube.writes import ObjectWriter
from pequod.metrics import DAG_NODES, RESOURCES_MANAGED

logger = structlog.get_logger(__name__)

GraphKey = tuple[str, str]
EXECUTING_RECHECK_SECONDS = 30.0
DELETION_RECHECK_SECONDS = 1.0


class ManagedObjects:
    """Live objects Pequod applied, from label-filtered informers (one per kind, started on
    first use); a lookup the cache cannot answer yet goes to the API server."""

    def __init__(self, client: KubeClient, manager: Manager, on_change: Any) -> None:
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
        informer = self.manager.informer(
            rt, label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
        )
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
        """Pequod just wrote ``obj`` (as the API server returned it)."""
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


class GraphReconciler:
    def __init__(
        self,
        client: KubeClient,
        manager: Manager,
        writer: ObjectWriter,
        *,
        concurrency: int = 4,
        apply_concurrency: int = 8,
        ready_timeout: float = 600.0,
    ) -> None:
        self.client = client
        self.writer = writer
        self.events = writer.events
        self.controller: Controller[GraphKey] = Controller(
            "resourcegraph",
            self.reconcile,
            concurrency=concurrency,
            log_context=lambda key: {"kind": "ResourceGraph", "namespace": key[0], "name": key[1]},
        )
        self.graphs = manager.informer(
            RESOURCE_GRAPHS, label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
        )
        self.controller.watch(
            self.graphs,
            lambda e: [(e.object["metadata"]["namespace"], e.object["metadata"]["name"])],
            predicate=spec_or_metadata_changed,
        )
        self.live = ManagedObjects(client, manager, self._object_changed)
        # Per graph: node counts by phase, and inventory size (summed into the gauges).
        self._node_phases: dict[GraphKey, collections.Counter[str]] = {}
        self._inventory_sizes: dict[GraphKey, int] = {}
        self._phase_totals: collections.Counter[str] = collections.Counter()
        self._inventory_total = 0
        self.executor = GraphExecutor(
            client,
            manager.discovery,
            self.live,
            apply_concurrency=apply_concurrency,
            ready_timeout=ready_timeout,
        )

    def _object_changed(self, event: InformerEvent) -> None:
        owner = graph_of(event.object)
        if owner is not None:
            self.controller.enqueue(owner)

    async def reconcile(self, key: GraphKey) -> Result:
        namespace, name = key
        graph = self.graphs.get(f"{namespace}/{name}")
        if graph is None:
            self._record(key, None)
            return DONE
        finalizers = graph["metadata"].get("finalizers") or []
        if graph["metadata"].get("deletionTimestamp"):
            if RESOURCE_GRAPH_FINALIZER not in finalizers:
                return DONE
            instance = await self._instance_living_on(graph)
            if instance is not None:
                await self._release(key, graph, finalizers)
                await self._report_orphaned(graph, instance)
                return DONE
            done, waiting = await self.executor.delete(graph)
            if not done:
                await self.writer.write_status(
                    RESOURCE_GRAPHS,
                    graph,
                    {**(graph.get("status") or {}), "phase": "Deleting"},
                )
                logger.info("deleting", graph=f"{namespace}/{name}", waiting=waiting)
                return Result(requeue_after=DELETION_RECHECK_SECONDS)
            await self._release(key, graph, finalizers)
            return DONE
        if RESOURCE_GRAPH_FINALIZER not in finalizers:
            await self.writer.set_finalizers(
                RESOURCE_GRAPHS, graph, [*finalizers, RESOURCE_GRAPH_FINALIZER]
            )
        result = await self.executor.execute(graph)
        self._record(key, result)
        await self._report(graph, result)
        if result.phase in ("Ready", "DryRun") and result.retry_after is None:
            return DONE
        return Result(requeue_after=result.retry_after or EXECUTING_RECHECK_SECONDS)

    async def _instance_living_on(self, graph: dict[str, Any]) -> dict[str, Any] | None:
        """The graph's instance, read live from the API server (a cache may not have seen its
        deletion yet), when it exists with the uid the graph names, is not being deleted and
        its namespace is not being deleted: then the graph's deletion is not the instance's,
        and its objects must stay. None when the objects are to go with the graph."""
        source = graph["spec"].get("sourceRef") or {}
        uid = source.get("uid")
        if not uid:
            return None
        namespace = graph["metadata"]["namespace"]
        try:
            rt = await self.executor.discovery.resource_type(source["apiVersion"], source["kind"])
        except UnknownKindError:
            return None  # the instance's kind is no longer served: its instances are gone
        instance = await self.client.get(rt, source["name"], namespace)
        if (
            instance is None
            or instance["metadata"].get("uid") != uid
            or instance["metadata"].get("deletionTimestamp")
        ):
            return None
        # The namespace controller deletes graphs and instances in no particular order: in a
        # namespace being deleted, the graph's deletion is the instance's too.
        space = await self.client.get(NAMESPACES, namespace)
        if space is None or space["metadata"].get("deletionTimestamp"):
            return None
        return instance

    async def _release(self, key: GraphKey, graph: dict[str, Any], finalizers: list[str]) -> None:
        """Removes Pequod's finalizer from a graph that is going, and forgets the graph."""
        await self.writer.set_finalizers(
            RESOURCE_GRAPHS,
            graph,
            [f for f in finalizers if f != RESOURCE_GRAPH_FINALIZER],
        )
        self.executor.forget(graph)
        self._record(key, None)

    async def _report_orphaned(self, graph: dict[str, Any], instance: dict[str, Any]) -> None:
        """Says that a graph went without its objects: the graph that replaces it adopts them."""
        graph_name = f"{graph['metadata']['namespace']}/{graph['metadata']['name']}"
        inventory = (graph.get("status") or {}).get("inventory") or []
        message = (
            f"ResourceGraph {graph_name} was deleted while {instance['kind']} "
            f"{instance['metadata']['name']} still exists: its {len(inventory)} objects are left "
            "in place for the graph that replaces it to adopt. Only the operator should delete "
            "graphs; delete the instance to remove its objects."
        )
        logger.warning(
            "resource graph deleted while its instance exists; objects left in place",
            graph=graph_name,
            instance=instance["metadata"]["name"],
            objects=len(inventory),
        )
        await self.events.record(instance, "Warning", "ResourceGraphDeleted", message)

    def _record(self, key: GraphKey, result: PassResult | None) -> None:
        """Updates pequod_dag_nodes and pequod_resources_managed with this graph's share (the
        totals are kept as running sums: one graph's pass costs the same at any graph count)."""
        old_phases = self._node_phases.pop(key, None)
        if old_phases is not None:
            self._phase_totals.subtract(old_phases)
        self._inventory_total -= self._inventory_sizes.pop(key, 0)
        if result is not None:
            phases = collections.Counter(n.phase for n in result.nodes.values())
            self._node_phases[key] = phases
            self._phase_totals.update(phases)
            self._inventory_sizes[key] = len(result.inventory)
            self._inventory_total += len(result.inventory)
        for phase in PHASES:
            DAG_NODES.labels(phase).set(self._phase_totals.get(phase, 0))
        RESOURCES_MANAGED.set(self._inventory_total)

    async def _report(self, graph: dict[str, Any], result: PassResult) -> None:
        previous = graph.get("status") or {}
        generation = graph["metadata"].get("generation")
        phase = result.phase
        errors = [f"{n.id}: {n.last_error}" for n in result.nodes.values() if n.phase == "Error"]
        if result.dry_run:
            message = f"dry run: {len(result.nodes)} nodes planned, nothing applied" + (
                f"; would prune {', '.join(result.pruned)}" if result.pruned else ""
            )
        else:
            message = f"{result.ready_nodes}/{len(result.nodes)} nodes ready"
        if errors:
            message += f"; errors: {_first_few(errors)}"
        waiting = [
            f"{n.id}: {n.last_error or n.ready_details}"
            for n in result.nodes.values()
            if n.phase in ("Applying", "Applied") and (n.last_error or n.ready_details)
        ]
        if waiting:
            message += f"; waiting: {_first_few(waiting)}"
        conditions = set_condition(
            previous.get("conditions") or [], "Ready", phase == "Ready", phase, message, generation
        )
        status = {
            "phase": phase,
            "observedGeneration": generation,
            "conditions": conditions,
            "readyNodes": result.ready_nodes,
            "totalNodes": len(result.nodes),
            "nodes": [n.to_dict() for n in result.nodes.values()],
            "inventory": result.inventory,
        }
        if await self._write_status(graph, status):
            applied = (
                f"applied {', '.join(n.id for n in result.nodes.values() if n.applied_now)}"
                if result.applied and not result.dry_run
                else ""
            )
            # Outcomes are events (Ready, Failed, DryRun); passing through Executing is not.
            # A pass that applies and reaches its outcome says both in one event.
            if previous.get("phase") != phase and phase != "Executing":
                kind = "Warning" if phase == "Failed" else "Normal"
                await self.events.record(
                    graph, kind, phase, f"{message}; {applied}" if applied else message
                )
            elif applied:
                await self.events.record(graph, "Normal", "Applied", applied)
            if result.pruned and not result.dry_run:
                await self.events.record(graph, "Normal", "Pruned", ", ".join(result.pruned))

    async def _write_status(self, graph: dict[str, Any], status: dict[str, Any]) -> bool:
        # A refused status keeps the inventory: pruning and deletion work from it.
        return await self.writer.write_status_or_refusal(
            RESOURCE_GRAPHS, graph, status, kept=("inventory",)
        )


MESSAGE_ENTRIES = 10


def _first_few(entries: list[str]) -> str:
    """A condition message names a few nodes, not thousands: the instance's status repeats
    it, and each per-node detail is in the graph's status.nodes anyway."""
    shown = "; ".join(entry[:300] for entry in entries[:MESSAGE_ENTRIES])
    hidden = len(entries) - MESSAGE_ENTRIES
    return shown + (f"; and {hidden} more (see status.nodes)" if hidden > 0 else "")
