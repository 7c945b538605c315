"""One pass of a ResourceGraph against the cluster: every node whose dependencies are Ready is
applied (concurrently, up to a limit) and checked for readiness; the rest wait. A pass starts
from the live state, so a pass after a restart converges without duplicates. After a pass that
leaves every node Ready, the objects that left the graph are pruned.

A graph with ``spec.dryRun`` goes through the same checks (ownership, confinement, conflicts)
but every node is planned (:mod:`pequod.executor.plan`) instead of applied."""

from __future__ import annotations

import asyncio
import graphlib
from typing import Any

import structlog

from pequod.api.names import FIELD_MANAGER
from pequod.api.ownership import mark, owned_by
from pequod.api.resource_graph import InventoryEntry, ResourceGraph, merged
from pequod.backoff import Backoff, FailureCounts
from pequod.clock import age_seconds, timestamp
from pequod.executor.adopt import (
    adopted,
    adoption_marks,
    planned,
    refusal,
    take_over,
    take_over_body,
    with_adoption_marks,
)
from pequod.executor.compare import up_to_date
from pequod.executor.confine import confine
from pequod.executor.live import LiveObjects
from pequod.executor.managed_fields import hand_over
from pequod.executor.plan import plan_node
from pequod.executor.prune import Pruner
from pequod.executor.readiness import evaluate
from pequod.executor.result import (
    ADOPTED,
    APPLIED,
    APPLYING,
    BLOCKED,
    ERROR,
    PENDING,
    PLANNED,
    READY,
    WAITING,
    ChangeSet,
    NodePhase,
    NodeStatus,
    PassResult,
)
from pequod.executor.ssa import ServerSideApply
from pequod.graph.model import Node
from pequod.kube.client import API_OR_TRANSPORT_ERRORS, ApiError, KubeClient
from pequod.kube.discovery import Discovery, UnknownKindError
from pequod.kube.resources import ResourceType
from pequod.metrics import DAG_EXECUTION_DURATION, DRIFT_CORRECTIONS
from pequod.render.observe import known_in, read_paths

logger = structlog.get_logger(__name__)

NODE_BACKOFF = Backoff(base=1.0, cap=300.0, jitter=0.2)
"""Between passes over a node whose apply failed transiently (throttling, server errors,
timeouts), counted per graph and node so one flaky node does not slow the others."""

UNKNOWN_KIND_RECHECK_SECONDS = 10.0
"""A kind the API server does not serve yet (a CRD another node or another tool installs)."""

ADOPTED_RECHECK_SECONDS = 1.0
"""After a pass that took objects over: the next pass reports them as they are now."""

OBSERVED_RECHECK_SECONDS = 10.0
"""An object a node observes (adoption ``Observe``) that does not exist or is not ready: it
carries no Pequod label, so no informer brings its changes."""

OBSERVED_RESYNC_SECONDS = 60.0
"""An observed object that is ready: checked again that often, for it may not stay so."""


class GraphExecutor:
    def __init__(
        self,
        client: KubeClient,
        discovery: Discovery,
        live: LiveObjects,
        *,
        apply_concurrency: int,
        ready_timeout: float,
        backoff: FailureCounts[tuple[str, str]] | None = None,
    ) -> None:
        self.client = client
        self.discovery = discovery
        self.live = live
        self.ssa = ServerSideApply(client, concurrency=apply_concurrency)
        self.pruner = Pruner(client, discovery, live)
        self.ready_timeout = ready_timeout
        self.backoff = backoff if backoff is not None else FailureCounts(NODE_BACKOFF)
        # Per graph (by key): the inventory of this process's last pass over it. Its status
        # write may have failed, or not reached the cache yet: what it applied is still the
        # graph's, to prune or delete.
        self._applied: dict[str, list[InventoryEntry]] = {}
        # Per graph (by key) and node: the objects taken over whose hand-over of fields this
        # process has seen done.
        self._taken_over: set[tuple[str, str]] = set()

    async def execute(self, graph: ResourceGraph) -> PassResult:
        with DAG_EXECUTION_DURATION.time():
            return await self._execute(graph)

    async def delete(self, graph: ResourceGraph) -> tuple[bool, str]:
        """Deletes the graph's objects in reverse dependency order (:meth:`Pruner.delete`)."""
        return await self.pruner.delete(graph, self._applied.get(graph.key, []))

    def forget(self, graph: ResourceGraph) -> None:
        """Drops what the executor remembers about a graph that is gone."""
        key = graph.key
        self.backoff.forget_where(lambda failed: failed[0] == key)
        self._applied.pop(key, None)
        self._taken_over = {t for t in self._taken_over if t[0] != key}

    async def _execute(self, graph: ResourceGraph) -> PassResult:
        nodes = graph.spec.nodes
        by_id = {n.id: n for n in nodes}
        statuses = {
            n.id: NodeStatus(n.id, applied_at=graph.status.applied_at.get(n.id, "")) for n in nodes
        }
        inventory: dict[str, InventoryEntry] = {}
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for node in nodes:
            sorter.add(node.id, *node.depends_on)
        sorter.prepare()
        result = PassResult(statuses, [], dry_run=graph.spec.dry_run)
        # Values of nodes this pass does not reach stay as the last pass found them.
        observed_paths = graph.spec.observe.node_paths()
        result.observed = {k: v for k, v in graph.status.observed.items() if k in observed_paths}
        recorded = [] if result.dry_run else await self._recorded(graph)
        while sorter.is_active():
            ready_ids = sorter.get_ready()
            if not ready_ids:
                break
            outcomes = await asyncio.gather(
                *(self._node(graph, by_id[i], statuses[i], inventory, result) for i in ready_ids)
            )
            progressed = False
            for node_id, is_ready in zip(ready_ids, outcomes, strict=True):
                if is_ready:
                    sorter.done(node_id)
                    progressed = True
            if not progressed:
                break
        _mark_blocked(nodes, statuses)
        _mark_waiting(nodes, statuses)
        waiting = [n for n in nodes if n.waiting_for]
        result.superseded = (
            bool(waiting)
            and not result.dry_run
            and result.phase == "Executing"
            and all(known_in(result.observed, p) for n in waiting for p in n.waiting_for)
        )
        result.changes = ChangeSet.of_nodes(statuses)
        result.inventory = [inventory[n.id] for n in nodes if n.id in inventory]
        if result.dry_run:
            # What a prune would delete is what left the graph: every node's object stays,
            # whether or not its plan got as far as the object.
            result.changes.pruned = self.pruner.prunable(graph, _rendered(nodes))
            result.inventory = list(graph.status.inventory)
        elif result.phase == "Ready":
            pruned, skipped = await self.pruner.prune(
                graph, recorded, [*result.inventory, *result.kept]
            )
            result.changes.pruned, result.changes.skipped = pruned, skipped
        else:
            # Keep what the previous inventory knew until the new graph is applied in full.
            result.inventory = merged(result.inventory, recorded)
        if not result.dry_run:
            self._applied[graph.key] = list(result.inventory)
        return result

    async def _recorded(self, graph: ResourceGraph) -> list[InventoryEntry]:
        """Every object a pass over this graph may have applied: the status inventory, what
        this process's last pass applied, and, when no pass of this process has run on the
        graph and its spec changed since the status was written, the objects labelled with its
        instance that no inventory lists (a pass killed between an apply and the status write
        that records it leaves those, and a spec that no longer renders them)."""
        entries = list(graph.status.inventory)
        remembered = self._applied.get(graph.key)
        if remembered is not None:
            return merged(entries, remembered)
        if not graph.status_is_current:
            return merged(entries, await self.pruner.labelled(graph, entries))
        return entries

    async def _node(
        self,
        graph: ResourceGraph,
        node: Node,
        status: NodeStatus,
        inventory: dict[str, InventoryEntry],
        result: PassResult,
    ) -> bool:
        """Applies one node if needed and reports whether it is Ready. Never raises.

        Transient failures keep the node Applying and ask for another pass after an
        exponential backoff with jitter; permanent ones make it Error with the API's message."""
        try:
            ready = await self._apply_node(graph, node, status, inventory, result)
        except API_OR_TRANSPORT_ERRORS as error:
            if isinstance(error, ApiError) and not error.transient:
                status.phase = ERROR
                status.last_error = error.message or str(error)
                return False
            attempts, delay = self.backoff.failed((graph.key, node.id))
            status.phase = APPLYING
            status.last_error = (
                f"{_describe(error)} (attempt {attempts}, retrying in {delay:.1f} s)"
            )
            result.wait(delay)
            return False
        except Exception as error:  # one node's surprise never stops the others
            logger.exception("node failed", node=node.id)
            status.phase = ERROR
            status.last_error = f"{type(error).__name__}: {error}"
            return False
        self.backoff.forget((graph.key, node.id))
        return ready

    async def _apply_node(
        self,
        graph: ResourceGraph,
        node: Node,
        status: NodeStatus,
        inventory: dict[str, InventoryEntry],
        result: PassResult,
    ) -> bool:
        obj = node.object
        if node.waiting_for:
            # Rendered before values it holds were known: applying it would write the pending
            # placeholders. The render that has them replaces this node.
            status.phase = WAITING
            status.ready_details = f"waiting for {', '.join(node.waiting_for)}"
            return False
        try:
            rt = await self.discovery.resource_type(obj["apiVersion"], obj["kind"])
        except UnknownKindError as error:
            if result.dry_run:
                status.phase = ERROR
                status.last_error = str(error)
                return False
            status.phase = APPLYING
            status.last_error = str(error)
            result.wait(UNKNOWN_KIND_RECHECK_SECONDS)
            return False
        self.live.watch(rt)
        desired = mark(obj, graph, node.id)
        namespace = confine(graph, rt, desired)
        name = desired["metadata"]["name"]
        # An object Pequod manages is in the cache; one that is not may exist without Pequod's
        # labels, and must not be taken over unless the node asks: the API server's watch
        # cache answers that.
        live = await self.live.get(rt, namespace, name, cached_read=True)
        where = f"{obj['kind']} {namespace}/{name}" if namespace else f"{obj['kind']} {name}"
        if node.observe_only:
            return self._observe(graph, node, live, where, namespace, status, result)
        taking_over = live is not None and not owned_by(live, graph.spec.source)
        if live is not None and taking_over:
            problem = refusal(live, node)
            if problem:
                status.phase = ERROR
                status.last_error = f"{where}: {problem}"
                return False
        else:
            with_adoption_marks(desired, adoption_marks(live))
        if result.dry_run:
            if live is not None and taking_over:
                return await self._plan_take_over(rt, node, desired, live, status)
            return await plan_node(self.ssa, rt, node, desired, live, status)
        if live is not None and taking_over:
            live, status.adoption = await take_over(self.ssa, rt, node, desired, live)
            self._taken_over.add((graph.key, node.id))
            self.live.written(rt, live)
            status.applied_at = timestamp()
            status.change = "adopted"
        elif live is not None and (node.create_only or up_to_date(live, desired)):
            status.change = "unchanged"
            if adoption_marks(live) and (graph.key, node.id) not in self._taken_over:
                # A process killed between a take-over's apply and its hand-over of fields
                # leaves the object shared: the next one finishes it, once per object.
                await self._finish_take_over(rt, live)
                self._taken_over.add((graph.key, node.id))
        else:
            applied = await self._apply(rt, node, desired, live, status)
            if applied is None:
                return False
            self.live.written(rt, applied)
            status.applied_at = timestamp()
            status.change = "created" if live is None else "configured"
            live = applied
        inventory[node.id] = InventoryEntry(
            api_version=obj["apiVersion"],
            kind=obj["kind"],
            namespace=namespace,
            name=name,
            uid=live["metadata"].get("uid", ""),
            node_id=node.id,
            deletion_policy=node.deletion_policy,
        )
        paths = graph.spec.observe.node_paths().get(node.id)
        if paths:
            result.observed[node.id] = read_paths(live, paths)
        status.adopted_at, status.adopted_from = adopted(live)
        ready = self._readiness(node, live, status)
        if status.adoption is not None:
            status.phase = ADOPTED
            result.wait(ADOPTED_RECHECK_SECONDS)
        return ready

    def _observe(
        self,
        graph: ResourceGraph,
        node: Node,
        live: dict[str, Any] | None,
        where: str,
        namespace: str | None,
        status: NodeStatus,
        result: PassResult,
    ) -> bool:
        """A node adopted with Observe: its object is read, counts for readiness and for
        observed values, and is never written, pruned or deleted."""
        if live is None:
            status.phase = PLANNED if result.dry_run else WAITING
            status.ready_details = (
                f"{where} does not exist; Observe waits for it and never creates it"
            )
            result.wait(OBSERVED_RECHECK_SECONDS)
            return bool(result.dry_run)
        obj = node.object
        result.kept.append(
            InventoryEntry(
                api_version=obj["apiVersion"],
                kind=obj["kind"],
                namespace=namespace,
                name=obj["metadata"]["name"],
                uid=live["metadata"].get("uid", ""),
                node_id=node.id,
                deletion_policy="Orphan",
            )
        )
        paths = graph.spec.observe.node_paths().get(node.id)
        if paths:
            result.observed[node.id] = read_paths(live, paths)
        readiness = evaluate(live, list(node.ready_when))
        if result.dry_run:
            status.phase = PLANNED
            status.ready_details = f"would observe (never written): {readiness.details}"
            return True
        if readiness.ready:
            status.phase = READY
            status.ready_details = f"observed (never written): {readiness.details}"
            result.wait(OBSERVED_RESYNC_SECONDS)
            return True
        status.phase = WAITING
        status.ready_details = f"observed (never written), not ready: {readiness.details}"
        result.wait(OBSERVED_RECHECK_SECONDS)
        return False

    async def _plan_take_over(
        self,
        rt: ResourceType,
        node: Node,
        desired: dict[str, Any],
        live: dict[str, Any],
        status: NodeStatus,
    ) -> bool:
        """The dry run of a take-over: validated by the API server, nothing stored."""
        async with self.ssa.limit:
            await self.ssa.apply(rt, take_over_body(node, desired), force=True, dry_run=True)
        status.phase = PLANNED
        status.ready_details = planned(node, desired, live)
        return True

    async def _finish_take_over(self, rt: ResourceType, live: dict[str, Any]) -> None:
        metadata = live["metadata"]
        # The cache strips managedFields: they are read fresh.
        fresh = await self.client.get(rt, metadata["name"], metadata.get("namespace"))
        if fresh is not None:
            self.live.written(rt, await hand_over(self.client, rt, fresh, FIELD_MANAGER))

    async def _apply(
        self,
        rt: ResourceType,
        node: Node,
        desired: dict[str, Any],
        live: dict[str, Any] | None,
        status: NodeStatus,
    ) -> dict[str, Any] | None:
        """Applies ``desired``: the object as the API server returns it, or None (and the node
        in Error) when other appliers own fields it sets."""
        async with self.ssa.limit:
            try:
                return await self.ssa.apply(rt, desired, force=node.force_conflicts)
            except ApiError as error:
                if not error.conflict or live is None:
                    raise
                co_owned = await self.ssa.co_owner_conflict(rt, live, error)
                if co_owned:
                    status.phase = ERROR
                    status.last_error = (
                        f"{co_owned} "
                        "(set applyPolicy.conflictPolicy: Force to take the fields over)"
                    )
                    return None
                # Only ad-hoc updates (kubectl edit, scale...) changed fields Pequod manages:
                # that is drift, and the desired state wins.
                applied = await self.ssa.apply(rt, desired, force=True)
                status.drift_corrected = True
                DRIFT_CORRECTIONS.inc()
                return applied

    def _readiness(self, node: Node, live: dict[str, Any], status: NodeStatus) -> bool:
        """Checks the node's readiness into ``status``; True when it is Ready. A node applied
        longer than the ready timeout ago and still not ready is an Error."""
        readiness = evaluate(live, list(node.ready_when))
        status.ready_details = readiness.details
        if readiness.ready:
            status.phase = READY
            return True
        status.phase = APPLIED
        if status.applied_at and age_seconds(status.applied_at) > self.ready_timeout:
            status.phase = ERROR
            status.last_error = (
                f"not ready {self.ready_timeout:.0f} s after it was applied: {readiness.details}"
            )
        return False


def _mark_blocked(nodes: tuple[Node, ...], statuses: dict[str, NodeStatus]) -> None:
    """Marks Blocked each Pending node that depends, directly or not, on one that failed."""
    for status, blockers in _pending_behind(nodes, statuses, ERROR, BLOCKED):
        status.last_error = f"blocked by {blockers}"


def _mark_waiting(nodes: tuple[Node, ...], statuses: dict[str, NodeStatus]) -> None:
    """Marks Waiting each Pending node that depends, directly or not, on a Waiting one."""
    for status, blockers in _pending_behind(nodes, statuses, WAITING, WAITING):
        status.ready_details = f"waits for {blockers}"


def _pending_behind(
    nodes: tuple[Node, ...],
    statuses: dict[str, NodeStatus],
    behind: NodePhase,
    marked: NodePhase,
) -> list[tuple[NodeStatus, str]]:
    """Puts each Pending node that depends, directly or not, on a node in phase ``behind``
    into phase ``marked``; returns each with the ids it depends on that hold it back."""
    held = {i for i, s in statuses.items() if s.phase == behind}
    found: list[tuple[NodeStatus, str]] = []
    changed = True
    while changed:
        changed = False
        for node in nodes:
            status = statuses[node.id]
            blockers = held & set(node.depends_on)
            if status.phase == PENDING and blockers:
                status.phase = marked
                found.append((status, ", ".join(sorted(blockers))))
                held.add(node.id)
                changed = True
    return found


def _rendered(nodes: tuple[Node, ...]) -> list[InventoryEntry]:
    """The objects the nodes render, as inventory entries (for their keys)."""
    return [
        InventoryEntry(
            api_version=n.object["apiVersion"],
            kind=n.object["kind"],
            name=n.object["metadata"]["name"],
            namespace=n.object["metadata"].get("namespace"),
            node_id=n.id,
        )
        for n in nodes
    ]


def _describe(error: BaseException) -> str:
    if isinstance(error, ApiError):
        return str(error)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
