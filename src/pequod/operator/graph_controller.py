"""The ResourceGraph controller: runs the executor on each graph, writes the graph's status,
and on deletion removes the objects in reverse dependency order before letting the graph go.

A graph deleted while its instance lives on (the admission policy not installed, a restore from
a backup, a stray ``kubectl delete``) is not the instance's deletion: the graph goes, its objects
stay, and the graph the instance controller writes in its place adopts them (they carry the
instance's uid) without re-creating or restarting anything."""

from __future__ import annotations

import collections
import time
from typing import Any

import structlog

from pequod.api.names import RESOURCE_GRAPH_FINALIZER
from pequod.api.ownership import MANAGED_SELECTOR, graph_of
from pequod.api.resource_graph import ResourceGraph
from pequod.api.resources import RESOURCE_GRAPHS
from pequod.executor.apply import GraphExecutor
from pequod.executor.live import ManagedObjects
from pequod.executor.result import PHASES, PassResult
from pequod.kube.client import KubeClient
from pequod.kube.conditions import set_condition
from pequod.kube.controller import DONE, Controller, Result, spec_or_metadata_changed
from pequod.kube.discovery import UnknownKindError
from pequod.kube.informer import InformerEvent
from pequod.kube.manager import Manager
from pequod.kube.resources import NAMESPACES
from pequod.kube.writes import ObjectWriter
from pequod.metrics import DAG_NODES, RESOURCES_MANAGED

logger = structlog.get_logger(__name__)

GraphKey = tuple[str, str]
EXECUTING_RECHECK_SECONDS = 30.0
SUPERSEDED_GRACE_SECONDS = 30.0
"""How long passes superseded by the render they trigger go unwritten, at most: the graph
rendered with the values they found normally replaces them within seconds, later only when
the instance queue is long."""
DELETION_RECHECK_SECONDS = 1.0


class GraphReconciler:
    def __init__(
        self,
        client: KubeClient,
        manager: Manager,
        writer: ObjectWriter,
        *,
        concurrency: int,
        apply_concurrency: int,
        ready_timeout: float,
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
        self.graphs = manager.informer(RESOURCE_GRAPHS, label_selector=MANAGED_SELECTOR)
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
        # Per graph: the generation whose superseded passes were not reported, since when,
        # and what they applied (said in the next Event instead).
        self._unreported: dict[GraphKey, tuple[int | None, float, list[str]]] = {}
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
        obj = self.graphs.get(f"{namespace}/{name}")
        if obj is None:
            self._record(key, None)
            self._unreported.pop(key, None)
            return DONE
        graph = ResourceGraph.parse(obj)
        if graph.deleting:
            return await self._finalize(key, graph)
        await self._hold(graph)
        result = await self._execute(key, graph)
        await self._report(key, graph, result)
        if result.phase in ("Ready", "DryRun") and result.retry_after is None:
            return DONE
        return Result(requeue_after=result.retry_after or EXECUTING_RECHECK_SECONDS)

    async def _hold(self, graph: ResourceGraph) -> None:
        """Puts Pequod's finalizer on the graph (the instance controller writes it with the
        graph; a graph written otherwise gets it here) before anything is applied for it."""
        finalizers = _finalizers(graph)
        if RESOURCE_GRAPH_FINALIZER not in finalizers:
            await self.writer.set_finalizers(
                RESOURCE_GRAPHS, graph.object, [*finalizers, RESOURCE_GRAPH_FINALIZER]
            )

    async def _execute(self, key: GraphKey, graph: ResourceGraph) -> PassResult:
        """One pass of the executor over the graph, counted into the metrics."""
        result = await self.executor.execute(graph)
        self._record(key, result)
        return result

    async def _finalize(self, key: GraphKey, graph: ResourceGraph) -> Result:
        """A graph being deleted: its objects go first, in reverse dependency order, unless
        its instance lives on (then they stay for the graph that replaces it)."""
        if RESOURCE_GRAPH_FINALIZER not in _finalizers(graph):
            return DONE
        instance = await self._instance_living_on(graph)
        if instance is not None:
            await self._release(key, graph)
            await self._report_orphaned(graph, instance)
            return DONE
        done, waiting = await self.executor.delete(graph)
        if not done:
            await self.writer.write_status(
                RESOURCE_GRAPHS,
                graph.object,
                {**(graph.object.get("status") or {}), "phase": "Deleting"},
            )
            logger.info("deleting", graph=f"{graph.namespace}/{graph.name}", waiting=waiting)
            return Result(requeue_after=DELETION_RECHECK_SECONDS)
        await self._release(key, graph)
        return DONE

    async def _instance_living_on(self, graph: ResourceGraph) -> dict[str, Any] | None:
        """The graph's instance, read live from the API server (a cache may not have seen its
        deletion yet), when it exists with the uid the graph names, is not being deleted and
        its namespace is not being deleted: then the graph's deletion is not the instance's,
        and its objects must stay. None when the objects are to go with the graph."""
        source = graph.spec.source
        if not source.uid:
            return None
        try:
            rt = await self.executor.discovery.resource_type(source.api_version, source.kind)
        except UnknownKindError:
            return None  # the instance's kind is no longer served: its instances are gone
        instance = await self.client.get(rt, source.name, graph.namespace)
        if (
            instance is None
            or instance["metadata"].get("uid") != source.uid
            or instance["metadata"].get("deletionTimestamp")
        ):
            return None
        # The namespace controller deletes graphs and instances in no particular order: in a
        # namespace being deleted, the graph's deletion is the instance's too.
        space = await self.client.get(NAMESPACES, graph.namespace)
        if space is None or space["metadata"].get("deletionTimestamp"):
            return None
        return instance

    async def _release(self, key: GraphKey, graph: ResourceGraph) -> None:
        """Removes Pequod's finalizer from a graph that is going, and forgets the graph."""
        await self.writer.set_finalizers(
            RESOURCE_GRAPHS,
            graph.object,
            [f for f in _finalizers(graph) if f != RESOURCE_GRAPH_FINALIZER],
        )
        self.executor.forget(graph)
        self._record(key, None)
        self._unreported.pop(key, None)

    async def _report_orphaned(self, graph: ResourceGraph, instance: dict[str, Any]) -> None:
        """Says that a graph went without its objects: the graph that replaces it adopts them."""
        graph_name = f"{graph.namespace}/{graph.name}"
        objects = len(graph.status.inventory)
        message = (
            f"ResourceGraph {graph_name} was deleted while {instance['kind']} "
            f"{instance['metadata']['name']} still exists: its {objects} objects are left "
            "in place for the graph that replaces it to adopt. Only the operator should delete "
            "graphs; delete the instance to remove its objects."
        )
        logger.warning(
            "resource graph deleted while its instance exists; objects left in place",
            graph=graph_name,
            instance=instance["metadata"]["name"],
            objects=objects,
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
            phases = collections.Counter[str](n.phase for n in result.nodes.values())
            self._node_phases[key] = phases
            self._phase_totals.update(phases)
            self._inventory_sizes[key] = len(result.inventory)
            self._inventory_total += len(result.inventory)
        for phase in PHASES:
            DAG_NODES.labels(phase).set(self._phase_totals.get(phase, 0))
        RESOURCES_MANAGED.set(self._inventory_total)

    async def _report(self, key: GraphKey, graph: ResourceGraph, result: PassResult) -> None:
        """Writes the pass into the graph's status and, once written, says what changed in
        Events: an outcome (Ready, Failed, DryRun) reached, objects applied, objects pruned.

        A pass whose waiting nodes wait only for values it has just found is not written: the
        graph rendered with those values replaces this one at once, and its status is the one
        worth a write (what this pass applied is in its Event). Were that graph not to come
        within :data:`SUPERSEDED_GRACE_SECONDS`, the next pass over this one writes its
        status."""
        generation, since, unreported = self._unreported.pop(key, (None, 0.0, []))
        applied_now = [] if result.dry_run else result.changes.applied
        now = time.monotonic()
        if generation != graph.generation:
            since = now
        if result.superseded and now - since < SUPERSEDED_GRACE_SECONDS:
            self._unreported[key] = (graph.generation, since, [*unreported, *applied_now])
            result.wait(SUPERSEDED_GRACE_SECONDS - (now - since))
            return
        previous = graph.object.get("status") or {}
        message = _message(result)
        conditions = set_condition(
            previous.get("conditions") or [],
            "Ready",
            result.phase == "Ready",
            result.phase,
            message,
            graph.generation,
        )
        status: dict[str, Any] = {
            "phase": result.phase,
            "observedGeneration": graph.generation,
            "conditions": conditions,
            "readyNodes": result.ready_nodes,
            "totalNodes": len(result.nodes),
            "nodes": [n.to_dict() for n in result.nodes.values()],
            "inventory": [e.to_dict() for e in result.inventory],
        }
        if not graph.spec.observe.empty:
            status["observed"] = result.observed
        if await self._write_status(graph, status):
            await self._record_events(
                graph, previous.get("phase"), message, result, [*unreported, *applied_now]
            )

    async def _record_events(
        self,
        graph: ResourceGraph,
        previous_phase: str | None,
        message: str,
        result: PassResult,
        applied_ids: list[str],
    ) -> None:
        phase = result.phase
        applied = f"applied {', '.join(applied_ids)}" if applied_ids else ""
        # Outcomes are events (Ready, Failed, DryRun); passing through Executing is not.
        # A pass that applies and reaches its outcome says both in one event.
        if previous_phase != phase and phase != "Executing":
            kind = "Warning" if phase == "Failed" else "Normal"
            await self.events.record(
                graph.object, kind, phase, f"{message}; {applied}" if applied else message
            )
        elif applied:
            await self.events.record(graph.object, "Normal", "Applied", applied)
        if result.pruned and not result.dry_run:
            await self.events.record(graph.object, "Normal", "Pruned", ", ".join(result.pruned))
        if not result.dry_run:
            await self._record_adoptions(graph, result)

    async def _record_adoptions(self, graph: ResourceGraph, result: PassResult) -> None:
        """An Event per object taken over, on the instance and on the object itself: what
        ``kubectl describe`` of either shows."""
        source = graph.spec.source
        instance = {
            "apiVersion": source.api_version,
            "kind": source.kind,
            "metadata": {"name": source.name, "namespace": graph.namespace, "uid": source.uid},
        }
        for adoption in result.changes.adopted:
            message = adoption.describe()
            await self.events.record(instance, "Normal", "Adopted", message)
            await self.events.record(
                adoption.object,
                "Normal",
                "Adopted",
                f"{message}, for {source.kind} {source.name}",
            )

    async def _write_status(self, graph: ResourceGraph, status: dict[str, Any]) -> bool:
        # A refused status keeps the inventory: pruning and deletion work from it.
        return await self.writer.write_status_or_refusal(
            RESOURCE_GRAPHS, graph.object, status, kept=("inventory",)
        )


def _finalizers(graph: ResourceGraph) -> list[str]:
    return list(graph.object["metadata"].get("finalizers") or [])


def _message(result: PassResult) -> str:
    """The Ready condition's message: how far the pass got, and a few of the nodes that
    failed or wait."""
    if result.dry_run:
        message = f"dry run: {len(result.nodes)} nodes planned, nothing applied" + (
            f"; would prune {', '.join(result.pruned)}" if result.pruned else ""
        )
    else:
        message = f"{result.ready_nodes}/{len(result.nodes)} nodes ready"
    errors = [f"{n.id}: {n.last_error}" for n in result.nodes.values() if n.phase == "Error"]
    if errors:
        message += f"; errors: {_first_few(errors)}"
    waiting = [
        f"{n.id}: {n.last_error or n.ready_details}"
        for n in result.nodes.values()
        if n.phase in ("Waiting", "Applying", "Applied") and (n.last_error or n.ready_details)
    ]
    if waiting:
        message += f"; waiting: {_first_few(waiting)}"
    return message


MESSAGE_ENTRIES = 10


def _first_few(entries: list[str]) -> str:
    """A condition message names a few nodes, not thousands: the instance's status repeats
    it, and each per-node detail is in the graph's status.nodes anyway."""
    shown = "; ".join(entry[:300] for entry in entries[:MESSAGE_ENTRIES])
    hidden = len(entries) - MESSAGE_ENTRIES
    return shown + (f"; and {hidden} more (see status.nodes)" if hidden > 0 else "")
