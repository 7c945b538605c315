"""Runs one pass of a ResourceGraph against the cluster: every node whose dependencies are
Ready is applied (concurrently, up to a limit) and checked for readiness; the rest wait.
A pass starts from the live state, so a pass after a restart converges without duplicates.

A graph with ``spec.dryRun`` goes through the same checks (ownership, confinement, conflicts)
but every apply is sent with ``dryRun=All``: the API server validates and defaults each object,
nothing is stored, and each node reports what would happen."""

from __future__ import annotations

import asyncio
import graphlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from pequod.api.names import (
    FIELD_MANAGER,
    INSTANCE_UID_LABEL,
    NODE_ID_ANNOTATION,
    ORPHANED_ANNOTATION,
    PRUNE_ANNOTATION,
)
from pequod.api.ownership import mark, owned_by, owner_description
from pequod.backoff import Backoff, FailureCounts
from pequod.clock import age_seconds, timestamp
from pequod.executor.compare import changed_fields, up_to_date
from pequod.executor.readiness import evaluate
from pequod.kube.client import API_OR_TRANSPORT_ERRORS, ApiError, KubeClient
from pequod.kube.discovery import Discovery, UnknownKindError
from pequod.kube.resources import ResourceType
from pequod.metrics import (
    APPLY_DURATION,
    APPLY_TOTAL,
    DAG_EXECUTION_DURATION,
    DRIFT_CORRECTIONS,
)

logger = structlog.get_logger(__name__)

NODE_BACKOFF = Backoff(base=1.0, cap=300.0, jitter=0.2)
"""Between passes over a node whose apply failed transiently (throttling, server errors,
timeouts), counted per graph and node so one flaky node does not slow the others."""

PENDING, APPLYING, APPLIED, READY, ERROR, BLOCKED, PLANNED = (
    "Pending",
    "Applying",
    "Applied",
    "Ready",
    "Error",
    "Blocked",
    "Planned",
)
PHASES = (PENDING, APPLYING, APPLIED, READY, ERROR, BLOCKED, PLANNED)


class LiveObjects(Protocol):
    async def get(
        self, rt: ResourceType, namespace: str | None, name: str, *, cached_read: bool = False
    ) -> dict[str, Any] | None: ...

    def watch(self, rt: ResourceType) -> None: ...

    def written(self, rt: ResourceType, obj: dict[str, Any]) -> None: ...


@dataclass
class NodeStatus:
    id: str
    phase: str = PENDING
    last_error: str = ""
    ready_details: str = ""
    applied_at: str = ""
    applied_now: bool = False
    """Applied during this pass (not part of the status)."""

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"id": self.id, "phase": self.phase}
        if self.last_error:
            result["lastError"] = self.last_error
        if self.ready_details:
            result["readyDetails"] = self.ready_details
        if self.applied_at:
            result["appliedAt"] = self.applied_at
        return result


@dataclass
class PassResult:
    nodes: dict[str, NodeStatus]
    inventory: list[dict[str, Any]]
    dry_run: bool = False
    retry_after: float | None = None
    applied: int = 0
    drift_corrections: int = 0
    pruned: list[str] = field(default_factory=list)
    """Objects deleted because they left the graph (in a dry run: that would be deleted)."""

    @property
    def phase(self) -> str:
        phases = {n.phase for n in self.nodes.values()}
        if ERROR in phases:
            return "Failed"
        if self.dry_run:
            return "DryRun"
        if phases <= {READY}:
            return "Ready"
        return "Executing"

    def wait(self, seconds: float) -> None:
        """Asks for the next pass within ``seconds``."""
        self.retry_after = seconds if self.retry_after is None else min(self.retry_after, seconds)

    @property
    def ready_nodes(self) -> int:
        return sum(1 for n in self.nodes.values() if n.phase == READY)


class GraphExecutor:
    def __init__(
        self,
        client: KubeClient,
        discovery: Discovery,
        live: LiveObjects,
        *,
        apply_concurrency: int = 8,
        ready_timeout: float = 600.0,
        backoff: FailureCounts[tuple[str, str]] | None = None,
    ) -> None:
        self.client = client
        self.discovery = discovery
        self.live = live
        self.apply_limit = asyncio.Semaphore(apply_concurrency)
        self.ready_timeout = ready_timeout
        self.backoff = backoff if backoff is not None else FailureCounts(NODE_BACKOFF)
        # Per graph (by uid): the inventory of this process's last pass over it. Its status
        # write may have failed, or not reached the cache yet: what it applied is still the
        # graph's, to prune or delete.
        self._applied: dict[str, list[dict[str, Any]]] = {}

    # -- apply -----------------------------------------------------------------------------

    async def execute(self, graph: dict[str, Any]) -> PassResult:
        with DAG_EXECUTION_DURATION.time():
            return await self._execute(graph)

    async def _execute(self, graph: dict[str, Any]) -> PassResult:
        nodes: list[dict[str, Any]] = graph["spec"]["nodes"]
        by_id = {n["id"]: n for n in nodes}
        previous = {n["id"]: n for n in (graph.get("status") or {}).get("nodes") or []}
        statuses = {
            n["id"]: NodeStatus(n["id"], applied_at=previous.get(n["id"], {}).get("appliedAt", ""))
            for n in nodes
        }
        inventory: dict[str, dict[str, Any]] = {}
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for node in nodes:
            sorter.add(node["id"], *node.get("dependsOn", []))
        sorter.prepare()
        result = PassResult(statuses, [], dry_run=bool(graph["spec"].get("dryRun")))
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
        self._mark_blocked(nodes, statuses)
        result.inventory = [inventory[n["id"]] for n in nodes if n["id"] in inventory]
        if result.dry_run:
            result.pruned = self._prunable(graph, result.inventory)
            result.inventory = list((graph.get("status") or {}).get("inventory") or [])
        elif result.phase == "Ready":
            result.pruned = await self._prune(graph, recorded, result.inventory)
        else:
            # Keep what the previous inventory knew until the new graph is applied in full.
            kept = {_identity(e) for e in result.inventory}
            for entry in recorded:
                if _identity(entry) not in kept:
                    result.inventory.append(entry)
        if not result.dry_run:
            self._applied[_graph_key(graph)] = list(result.inventory)
        return result

    async def _recorded(self, graph: dict[str, Any]) -> list[dict[str, Any]]:
        """Every object a pass over this graph may have applied: the status inventory, what
        this process's last pass applied, and, when no pass of this process has run on the
        graph and its spec changed since the status was written, the objects labelled with its
        instance that no inventory lists (a pass killed between an apply and the status write
        that records it leaves those, and a spec that no longer renders them)."""
        status = graph.get("status") or {}
        entries = list(status.get("inventory") or [])
        remembered = self._applied.get(_graph_key(graph))
        if remembered is not None:
            return _merged(entries, remembered)
        if status.get("observedGeneration") != graph["metadata"].get("generation"):
            return _merged(entries, await self._labelled(graph, entries))
        return entries

    async def _labelled(
        self, graph: dict[str, Any], known: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The objects carrying the graph's instance-uid label, of the kinds its nodes and
        ``known`` name, in the namespaces it may write to, with the deletion policy of their
        node; of a node no longer in the graph, those it let go (orphaned, or annotated
        pequod.io/prune=disabled) are not the graph's any more."""
        uid = graph["spec"]["sourceRef"].get("uid", "")
        if not uid:
            return []
        policies = {n["id"]: n.get("deletionPolicy", "Delete") for n in graph["spec"]["nodes"]}
        kinds = {(n["object"]["apiVersion"], n["object"]["kind"]) for n in graph["spec"]["nodes"]}
        kinds |= {(e["apiVersion"], e["kind"]) for e in known}
        settings = graph["spec"].get("metadata") or {}
        allowed = set(settings.get("allowedNamespaces") or [])
        namespaces: list[str | None] = (
            [None] if "*" in allowed else sorted(allowed | {graph["metadata"]["namespace"]})
        )
        found: list[dict[str, Any]] = []
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
                        {
                            "apiVersion": api_version,
                            "kind": kind,
                            **({"namespace": metadata["namespace"]} if rt.namespaced else {}),
                            "name": metadata["name"],
                            "uid": metadata.get("uid", ""),
                            "nodeId": node_id,
                            "deletionPolicy": policies.get(node_id, "Delete"),
                        }
                    )
        return found

    def _mark_blocked(self, nodes: list[dict[str, Any]], statuses: dict[str, NodeStatus]) -> None:
        failed = {i for i, s in statuses.items() if s.phase == ERROR}
        changed = True
        while changed:
            changed = False
            for node in nodes:
                status = statuses[node["id"]]
                if status.phase in (PENDING,) and failed & set(node.get("dependsOn", [])):
                    status.phase = BLOCKED
                    blockers = sorted(failed & set(node.get("dependsOn", [])))
                    status.last_error = f"blocked by {', '.join(blockers)}"
                    failed.add(node["id"])
                    changed = True

    async def _node(
        self,
        graph: dict[str, Any],
        node: dict[str, Any],
        status: NodeStatus,
        inventory: dict[str, dict[str, Any]],
        result: PassResult,
    ) -> bool:
        """Applies one node if needed and reports whether it is Ready. Never raises.

        Transient failures keep the node Applying and ask for another pass after an
        exponential backoff with jitter; permanent ones make it Error with the API's message."""
        graph_key = _graph_key(graph)
        try:
            ready = await self._apply_node(graph, node, status, inventory, result)
        except API_OR_TRANSPORT_ERRORS as error:
            if isinstance(error, ApiError) and not error.transient:
                status.phase = ERROR
                status.last_error = error.message or str(error)
                return False
            attempts, delay = self.backoff.failed((graph_key, node["id"]))
            status.phase = APPLYING
            status.last_error = (
                f"{_describe(error)} (attempt {attempts}, retrying in {delay:.1f} s)"
            )
            result.wait(delay)
            return False
        except Exception as error:  # one node's surprise never stops the others
            logger.exception("node failed", node=node["id"])
            status.phase = ERROR
            status.last_error = f"{type(error).__name__}: {error}"
            return False
        self.backoff.forget((graph_key, node["id"]))
        return ready

    def forget(self, graph: dict[str, Any]) -> None:
        """Drops what the executor remembers about a graph that is gone."""
        key = _graph_key(graph)
        self.backoff.forget_where(lambda failed: failed[0] == key)
        self._applied.pop(_graph_key(graph), None)

    async def _apply_node(
        self,
        graph: dict[str, Any],
        node: dict[str, Any],
        status: NodeStatus,
        inventory: dict[str, dict[str, Any]],
        result: PassResult,
    ) -> bool:
        obj = node["object"]
        try:
            rt = await self.discovery.resource_type(obj["apiVersion"], obj["kind"])
        except UnknownKindError as error:
            if result.dry_run:
                status.phase = ERROR
                status.last_error = str(error)
                return False
            status.phase = APPLYING
            status.last_error = str(error)
            result.wait(10.0)
            return False
        self.live.watch(rt)
        desired = mark(obj, graph, node["id"])
        namespace = self._confine(graph, rt, desired)
        name = desired["metadata"]["name"]
        # An object Pequod manages is in the cache; one that is not may exist without Pequod's
        # labels, and must not be taken over: the API server's watch cache answers that.
        live = await self.live.get(rt, namespace, name, cached_read=True)
        if live is not None and not owned_by(live, graph):
            status.phase = ERROR
            where = f"{namespace}/{name}" if namespace else name
            status.last_error = (
                f"{obj['kind']} {where}: {owner_description(live)}; "
                "Pequod never takes over an object it does not own"
            )
            return False
        policy = node.get("applyPolicy") or {}
        create_only = policy.get("mode") == "CreateOnly"
        if result.dry_run:
            return await self._plan_node(rt, desired, live, create_only, policy, status)
        if live is None or (not create_only and not up_to_date(live, desired)):
            async with self.apply_limit:
                try:
                    live = await self._apply(
                        rt, desired, force=policy.get("conflictPolicy") == "Force"
                    )
                except ApiError as error:
                    if not error.conflict or live is None:
                        raise
                    co_owned = await self._co_owner_conflict(rt, live, error)
                    if co_owned:
                        status.phase = ERROR
                        status.last_error = (
                            f"{co_owned} "
                            "(set applyPolicy.conflictPolicy: Force to take the fields over)"
                        )
                        return False
                    # Only ad-hoc updates (kubectl edit, scale...) changed fields Pequod
                    # manages: that is drift, and the desired state wins.
                    live = await self._apply(rt, desired, force=True)
                    result.drift_corrections += 1
                    DRIFT_CORRECTIONS.inc()
            self.live.written(rt, live)
            status.applied_at = timestamp()
            status.applied_now = True
            result.applied += 1
        assert live is not None
        inventory[node["id"]] = {
            "apiVersion": obj["apiVersion"],
            "kind": obj["kind"],
            **({"namespace": namespace} if namespace else {}),
            "name": name,
            "uid": live["metadata"].get("uid", ""),
            "nodeId": node["id"],
            "deletionPolicy": node.get("deletionPolicy", "Delete"),
        }
        readiness = evaluate(live, node.get("readyWhen") or [])
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

    async def _apply(
        self, rt: ResourceType, desired: dict[str, Any], *, force: bool, dry_run: bool = False
    ) -> dict[str, Any]:
        try:
            with APPLY_DURATION.time():
                applied = await self.client.apply(
                    rt, desired, field_manager=FIELD_MANAGER, force=force, dry_run=dry_run
                )
        except ApiError as error:
            APPLY_TOTAL.labels("conflict" if error.conflict else "error").inc()
            raise
        APPLY_TOTAL.labels("dry_run" if dry_run else "success").inc()
        return applied

    async def _plan_node(
        self,
        rt: ResourceType,
        desired: dict[str, Any],
        live: dict[str, Any] | None,
        create_only: bool,
        policy: dict[str, Any],
        status: NodeStatus,
    ) -> bool:
        """Dry run of one node: the API server validates the object; nothing is stored.
        Reports what a real pass would do and lets the dependents be planned too."""
        status.phase = PLANNED
        if live is not None and create_only:
            status.ready_details = "exists; CreateOnly leaves it unchanged"
            return True
        if live is not None and up_to_date(live, desired):
            status.ready_details = "up to date"
            return True
        async with self.apply_limit:
            try:
                await self._apply(
                    rt, desired, force=policy.get("conflictPolicy") == "Force", dry_run=True
                )
            except ApiError as error:
                if not error.conflict or live is None:
                    raise
                co_owned = await self._co_owner_conflict(rt, live, error)
                if co_owned:
                    status.phase = ERROR
                    status.last_error = co_owned
                    return False
                status.ready_details = "would correct drift: " + ", ".join(
                    changed_fields(live, desired)
                )
                return True
        if live is None:
            status.ready_details = "would create"
        else:
            status.ready_details = "would update: " + ", ".join(changed_fields(live, desired))
        return True

    async def _co_owner_conflict(
        self, rt: ResourceType, live: dict[str, Any], error: ApiError
    ) -> str | None:
        """For a field conflict: the error to report when other server-side appliers own the
        fields (deliberate co-owners), None when only plain updates changed them (drift).
        An applier of other fields of the object is no party to the conflict: only the
        managers the conflict names count. managedFields are read fresh: the cache strips
        them."""
        metadata = live["metadata"]
        fresh = await self.client.get(rt, metadata["name"], metadata.get("namespace"))
        appliers = _other_appliers(fresh if fresh is not None else live)
        named = _conflicting_managers(error)
        if named is not None:
            appliers = [a for a in appliers if a in named]
        if not appliers:
            return None
        return f"field conflict with {', '.join(appliers)}: {error.message}"

    def _confine(
        self, graph: dict[str, Any], rt: ResourceType, desired: dict[str, Any]
    ) -> str | None:
        """Checks again where the object goes (the render checked it; this is defence in depth)."""
        metadata = desired["metadata"]
        settings = graph["spec"].get("metadata") or {}
        if not rt.namespaced:
            metadata.pop("namespace", None)
            if not settings.get("allowClusterScoped"):
                raise ApiError(
                    403,
                    "Forbidden",
                    f"{rt.kind} is cluster-scoped and the Transform does not allow that",
                )
            return None
        namespace = metadata.setdefault("namespace", graph["metadata"]["namespace"])
        allowed = set(settings.get("allowedNamespaces") or []) | {graph["metadata"]["namespace"]}
        if namespace not in allowed and "*" not in allowed:
            raise ApiError(
                403, "Forbidden", f"namespace {namespace!r} is not allowed for this instance"
            )
        return str(namespace)

    # -- prune and delete ------------------------------------------------------------------

    def _prunable(self, graph: dict[str, Any], current: list[dict[str, Any]]) -> list[str]:
        keep = {(e["kind"], e.get("namespace", ""), e["name"]) for e in current}
        return [
            f"{entry['kind']}/{entry['name']}"
            for entry in (graph.get("status") or {}).get("inventory") or []
            if (entry["kind"], entry.get("namespace", ""), entry["name"]) not in keep
            and entry.get("deletionPolicy") != "Orphan"
        ]

    async def _prune(
        self, graph: dict[str, Any], recorded: list[dict[str, Any]], current: list[dict[str, Any]]
    ) -> list[str]:
        keep = {_identity(e) for e in current}
        pruned: list[str] = []
        for entry in recorded:
            if _identity(entry) in keep:
                continue
            if await self._remove(graph, entry):
                pruned.append(f"{entry['kind']}/{entry['name']}")
        return pruned

    async def _remove(self, graph: dict[str, Any], entry: dict[str, Any]) -> bool:
        """Deletes an inventory entry's object unless it is orphaned; True when it was deleted
        (or already gone). An orphaned object is marked so (ORPHANED_ANNOTATION): it keeps its
        labels, and the search for objects no inventory lists must not take it back."""
        try:
            rt = await self.discovery.resource_type(entry["apiVersion"], entry["kind"])
        except UnknownKindError:
            return entry.get("deletionPolicy") != "Orphan"  # the kind is gone, and its objects
        live = await self.live.get(rt, entry.get("namespace"), entry["name"])
        if entry.get("deletionPolicy") == "Orphan":
            if (
                live is not None
                and owned_by(live, graph)
                and ORPHANED_ANNOTATION not in (live["metadata"].get("annotations") or {})
            ):
                try:
                    await self.client.merge_patch(
                        rt,
                        entry["name"],
                        entry.get("namespace"),
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
            not owned_by(live, graph)
            or (live["metadata"].get("annotations") or {}).get(PRUNE_ANNOTATION) == "disabled"
        ):
            return False
        await self.client.delete(
            rt, entry["name"], entry.get("namespace"), uid=live["metadata"]["uid"]
        )
        return True

    async def delete(self, graph: dict[str, Any]) -> tuple[bool, str]:
        """Deletes the graph's objects, dependents before their dependencies, one layer at a time,
        waiting for each layer to be gone. Returns (done, what it waits for)."""
        nodes = graph["spec"]["nodes"]
        # The inventory may miss objects (a pass killed before its status write): those
        # labelled with the instance are found too; one that belongs to no node of the graph
        # goes first.
        entries = _merged(
            list((graph.get("status") or {}).get("inventory") or []),
            self._applied.get(_graph_key(graph), []),
        )
        entries = _merged(entries, await self._labelled(graph, entries))
        node_ids = {n["id"] for n in nodes}
        by_node: dict[str, list[dict[str, Any]]] = {}
        for entry in entries:
            node_id = entry.get("nodeId", "")
            by_node.setdefault(node_id if node_id in node_ids else "", []).append(entry)
        for layer in [[""], *_reverse_layers(nodes)]:
            waiting: list[str] = []
            for entry in [e for node_id in layer for e in by_node.get(node_id, [])]:
                if entry.get("deletionPolicy") == "Orphan":
                    continue
                try:
                    rt = await self.discovery.resource_type(entry["apiVersion"], entry["kind"])
                except UnknownKindError:
                    continue
                live = await self.client.get(rt, entry["name"], entry.get("namespace"))
                if live is None or not owned_by(live, graph):
                    continue
                if not live["metadata"].get("deletionTimestamp"):
                    await self.client.delete(
                        rt,
                        entry["name"],
                        entry.get("namespace"),
                        propagation="Background",
                        uid=live["metadata"]["uid"],
                    )
                waiting.append(f"{entry['kind']}/{entry['name']}")
            if waiting:
                return False, f"waiting for {', '.join(waiting)} to be deleted"
        return True, ""


def _identity(entry: dict[str, Any]) -> tuple[str, str, str]:
    """What names an inventory entry's object: kind, namespace, name."""
    return entry["kind"], entry.get("namespace", ""), entry["name"]


def _merged(entries: list[dict[str, Any]], more: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``entries``, then those of ``more`` naming other objects."""
    seen = {_identity(e) for e in entries}
    return entries + [e for e in more if _identity(e) not in seen]


def _graph_key(graph: dict[str, Any]) -> str:
    """What per-graph memory (the backoff) is keyed by: the uid, so a recreated graph starts
    afresh."""
    return str(graph["metadata"].get("uid") or graph["metadata"]["name"])


def _describe(error: BaseException) -> str:
    if isinstance(error, ApiError):
        return str(error)
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _other_appliers(live: dict[str, Any]) -> list[str]:
    """Field managers other than Pequod that own fields through server-side apply: deliberate
    co-owners, whose fields Pequod does not take without conflictPolicy Force."""
    return sorted(
        {
            entry.get("manager", "?")
            for entry in live.get("metadata", {}).get("managedFields") or []
            if entry.get("operation") == "Apply" and entry.get("manager") != FIELD_MANAGER
        }
    )


_CONFLICT_CAUSE = re.compile(r'^conflict with "((?:[^"\\]|\\.)*)"')


def _conflicting_managers(error: ApiError) -> set[str] | None:
    """The field managers a field conflict names (the Status's FieldManagerConflict causes:
    ``conflict with "gitops" using v1``); None when the answer does not say."""
    body = error.body if isinstance(error.body, dict) else {}
    names: set[str] = set()
    for cause in (body.get("details") or {}).get("causes") or []:
        if cause.get("reason") != "FieldManagerConflict":
            continue
        match = _CONFLICT_CAUSE.match(str(cause.get("message", "")))
        if match:
            names.add(re.sub(r"\\(.)", r"\1", match.group(1)))
    return names or None


def _reverse_layers(nodes: Iterable[dict[str, Any]]) -> list[list[str]]:
    """Node ids in layers: first those nothing depends on, last the roots."""
    nodes = list(nodes)
    dependents: dict[str, set[str]] = {n["id"]: set() for n in nodes}
    for node in nodes:
        for dependency in node.get("dependsOn", []):
            dependents.setdefault(dependency, set()).add(node["id"])
    layers: list[list[str]] = []
    remaining = {n["id"] for n in nodes}
    while remaining:
        layer = sorted(i for i in remaining if not (dependents[i] & remaining))
        if not layer:  # a cycle cannot pass the render checks; stay safe regardless
            layer = sorted(remaining)
        layers.append(layer)
        remaining -= set(layer)
    return layers
