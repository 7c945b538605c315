"""The ResourceGraph document, typed: what the instance controller writes (built from a render)
and what the ResourceGraph controller and the executor read (parsed into :mod:`pequod.graph`
types). The CRD's schema (:mod:`pequod.api.crds`) describes the same fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pequod.api.names import (
    API_VERSION,
    RESOURCE_GRAPH_FINALIZER,
    RESOURCE_GRAPH_KIND,
)
from pequod.graph.model import Node, Violation
from pequod.graph.validate import api_group
from pequod.render.observe import NO_DECLARATION, Declaration


@dataclass(frozen=True)
class SourceRef:
    """The instance a graph was rendered from."""

    api_version: str
    kind: str
    name: str
    uid: str = ""

    @classmethod
    def of(cls, instance: dict[str, Any]) -> SourceRef:
        metadata = instance["metadata"]
        return cls(instance["apiVersion"], instance["kind"], metadata["name"], metadata["uid"])

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SourceRef:
        return cls(data["apiVersion"], data["kind"], data["name"], data.get("uid", ""))

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
        }


@dataclass(frozen=True)
class RenderMetadata:
    """Where a graph came from (the module, the render) and where its objects may go."""

    module_name: str = ""
    module_version: str = ""
    platform_ref: str = ""
    render_hash: str = ""
    rendered_at: str = ""
    transform: str = ""
    allowed_namespaces: tuple[str, ...] = ()
    allow_cluster_scoped: bool = False
    input_hash: str = ""
    """For a render that reads live state: the render hash of its module, policies and input
    alone, which keys what it reads (``spec.observe``) so a resync needs no ``cue`` run to
    know it."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RenderMetadata:
        return cls(
            module_name=data.get("name", ""),
            module_version=data.get("version", ""),
            platform_ref=data.get("platformRef", ""),
            render_hash=data.get("renderHash", ""),
            rendered_at=data.get("renderedAt", ""),
            transform=data.get("transform", ""),
            allowed_namespaces=tuple(data.get("allowedNamespaces") or ()),
            allow_cluster_scoped=bool(data.get("allowClusterScoped", False)),
            input_hash=data.get("inputHash", ""),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            **({"inputHash": self.input_hash} if self.input_hash else {}),
            "name": self.module_name,
            "version": self.module_version,
            "platformRef": self.platform_ref,
            "renderHash": self.render_hash,
            "renderedAt": self.rendered_at,
            "transform": self.transform,
            "allowedNamespaces": list(self.allowed_namespaces),
            "allowClusterScoped": self.allow_cluster_scoped,
        }


@dataclass(frozen=True)
class ResourceGraphSpec:
    source: SourceRef
    metadata: RenderMetadata
    nodes: tuple[Node, ...]
    violations: tuple[Violation, ...] = ()
    dry_run: bool = False
    observe: Declaration = NO_DECLARATION
    """What the render read (:mod:`pequod.render.observe`); the graph's controller reports
    the declared values of its own nodes in ``status.observed``."""
    instance_status: dict[str, Any] = field(default_factory=dict)
    """``#Render.status``: what the instance controller writes into the instance's status."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResourceGraphSpec:
        return cls(
            source=SourceRef.from_dict(data["sourceRef"]),
            metadata=RenderMetadata.from_dict(data.get("metadata") or {}),
            nodes=tuple(Node.from_dict(n) for n in data.get("nodes") or ()),
            violations=tuple(Violation.from_dict(v) for v in data.get("violations") or ()),
            dry_run=bool(data.get("dryRun", False)),
            observe=Declaration.from_dict(data.get("observe")),
            instance_status=dict(data.get("instanceStatus") or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        # The fields of live state are written only when a render has them, so the graphs
        # of modules without it are stored exactly as before.
        return {
            "sourceRef": self.source.to_dict(),
            "metadata": self.metadata.to_dict(),
            "nodes": [node.to_dict() for node in self.nodes],
            "violations": [v.to_dict() for v in self.violations],
            "dryRun": self.dry_run,
            **({"observe": self.observe.to_dict()} if not self.observe.empty else {}),
            **({"instanceStatus": self.instance_status} if self.instance_status else {}),
        }


InventoryKey = tuple[str, str, str, str]
"""What names an inventory entry's object: API group, kind, namespace ("" if none), name."""


@dataclass(frozen=True)
class InventoryEntry:
    """An object a graph applied (``status.inventory``): what to prune and delete."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None
    uid: str = ""
    node_id: str = ""
    deletion_policy: str = "Delete"

    @property
    def key(self) -> InventoryKey:
        return (api_group(self.api_version), self.kind, self.namespace or "", self.name)

    @property
    def orphaned_on_delete(self) -> bool:
        return self.deletion_policy == "Orphan"

    def describe(self) -> str:
        """``Kind/name``, as events and messages name an object."""
        return f"{self.kind}/{self.name}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InventoryEntry:
        return cls(
            api_version=data["apiVersion"],
            kind=data["kind"],
            name=data["name"],
            namespace=data.get("namespace") or None,
            uid=data.get("uid", ""),
            node_id=data.get("nodeId", ""),
            deletion_policy=data.get("deletionPolicy", "Delete"),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            **({"namespace": self.namespace} if self.namespace else {}),
            "name": self.name,
            "uid": self.uid,
            "nodeId": self.node_id,
            "deletionPolicy": self.deletion_policy,
        }


def merged(entries: list[InventoryEntry], more: list[InventoryEntry]) -> list[InventoryEntry]:
    """``entries``, then those of ``more`` naming other objects."""
    seen = {e.key for e in entries}
    return entries + [e for e in more if e.key not in seen]


@dataclass(frozen=True)
class ResourceGraphStatus:
    """What the graph's controller last reported (the parts a pass reads back)."""

    phase: str = ""
    observed_generation: int | None = None
    inventory: tuple[InventoryEntry, ...] = ()
    applied_at: dict[str, str] = field(default_factory=dict)
    """Per node id: when the node's object was last applied."""
    observed: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per node id: the declared paths of its live object that were found (``spec.observe``)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResourceGraphStatus:
        return cls(
            observed=dict(data.get("observed") or {}),
            phase=data.get("phase", ""),
            observed_generation=data.get("observedGeneration"),
            inventory=tuple(InventoryEntry.from_dict(e) for e in data.get("inventory") or ()),
            applied_at={
                n["id"]: n["appliedAt"] for n in data.get("nodes") or () if n.get("appliedAt")
            },
        )


@dataclass(frozen=True)
class ResourceGraph:
    """A ResourceGraph as read from the cluster: its identity, spec and reported status, and
    the object itself (for writes and events about it)."""

    namespace: str
    name: str
    uid: str
    generation: int | None
    spec: ResourceGraphSpec
    status: ResourceGraphStatus
    object: dict[str, Any]

    @classmethod
    def parse(cls, obj: dict[str, Any]) -> ResourceGraph:
        metadata = obj["metadata"]
        return cls(
            namespace=metadata["namespace"],
            name=metadata["name"],
            uid=metadata.get("uid", ""),
            generation=metadata.get("generation"),
            spec=ResourceGraphSpec.from_dict(obj["spec"]),
            status=ResourceGraphStatus.from_dict(obj.get("status") or {}),
            object=obj,
        )

    @property
    def key(self) -> str:
        """What per-graph memory is keyed by: the uid, so a recreated graph starts afresh."""
        return self.uid or self.name

    @property
    def deleting(self) -> bool:
        return bool(self.object["metadata"].get("deletionTimestamp"))

    @property
    def status_is_current(self) -> bool:
        """The controller has reported on this generation of the graph."""
        return self.status.observed_generation == self.generation

    def node(self, node_id: str) -> Node | None:
        return next((n for n in self.spec.nodes if n.id == node_id), None)


def controller_reference(owner: Mapping[str, Any], *, block_owner_deletion: bool) -> dict[str, Any]:
    """An owner reference naming ``owner`` as the controller (the garbage collector deletes
    the owned object with it)."""
    metadata = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": metadata["name"],
        "uid": metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": block_owner_deletion,
    }


def resource_graph_object(
    name: str,
    namespace: str,
    labels: dict[str, str],
    owner: dict[str, Any],
    spec: ResourceGraphSpec,
) -> dict[str, Any]:
    """The ResourceGraph to apply: ``spec``, owned (and garbage-collected) by the instance
    ``owner``, carrying Pequod's finalizer from the start."""
    return {
        "apiVersion": API_VERSION,
        "kind": RESOURCE_GRAPH_KIND,
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            # Written with the graph, saving the graph controller a patch per graph.
            "finalizers": [RESOURCE_GRAPH_FINALIZER],
            "ownerReferences": [controller_reference(owner, block_owner_deletion=True)],
        },
        "spec": spec.to_dict(),
    }
