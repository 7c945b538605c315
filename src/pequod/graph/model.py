"""The graph a module renders, after Pequod has checked it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SEVERITY_ERROR = "Error"
SEVERITY_WARNING = "Warning"

TAKE_OWNERSHIP = "TakeOwnership"
"""Adoption by which Pequod becomes the owner of an existing object's rendered fields."""
OBSERVE = "Observe"
"""Adoption by which Pequod reads an existing object and never writes it."""
ADOPTION_STRATEGIES = (TAKE_OWNERSHIP, OBSERVE)


@dataclass(frozen=True)
class Violation:
    """A finding of a module or a policy. ``Error`` blocks apply; ``Warning`` is reported."""

    path: str
    message: str
    severity: str = SEVERITY_ERROR
    source: str = ""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Violation:
        return cls(
            data["path"],
            data["message"],
            data.get("severity", SEVERITY_ERROR),
            data.get("source", ""),
        )

    def to_dict(self) -> dict[str, str]:
        result = {"path": self.path, "message": self.message, "severity": self.severity}
        if self.source:
            result["source"] = self.source
        return result

    def __str__(self) -> str:
        origin = f" [{self.source}]" if self.source else ""
        return f"{self.severity}: {self.path}: {self.message}{origin}"


@dataclass(frozen=True)
class Node:
    """One object of a graph and how it is applied, checked, ordered and deleted. Its shape as
    a module writes it is :data:`pequod.graph.shape.NODE_SCHEMA`; ``to_dict`` and ``from_dict``
    are that shape, as a ResourceGraph stores it."""

    id: str
    object: dict[str, Any]
    depends_on: tuple[str, ...] = ()
    ready_when: tuple[dict[str, Any], ...] = ()
    apply_mode: str = "Apply"
    conflict_policy: str = "Error"
    deletion_policy: str = "Delete"
    waiting_for: tuple[str, ...] = ()
    """Observed values the object holds that were not known at render (``nodes.ID.PATH``,
    ``references.NAME.PATH``): the node is not applied until a render has them."""
    adoption: str = ""
    """How an existing object Pequod did not create is taken over (:data:`TAKE_OWNERSHIP`,
    :data:`OBSERVE`); empty: it is not (a node error). Set by the instance controller from
    the instance's request and its Transform's allowance (:mod:`pequod.api.adoption`)."""

    @property
    def create_only(self) -> bool:
        return self.apply_mode == "CreateOnly"

    @property
    def force_conflicts(self) -> bool:
        return self.conflict_policy == "Force"

    @property
    def orphaned_on_delete(self) -> bool:
        return self.deletion_policy == "Orphan"

    @property
    def observe_only(self) -> bool:
        """The object is read, never written, pruned or deleted."""
        return self.adoption == OBSERVE

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Node:
        """A node as a module renders it or a ResourceGraph stores it (defaults filled in)."""
        apply_policy = raw.get("applyPolicy") or {}
        return cls(
            id=raw["id"],
            object=raw["object"],
            depends_on=tuple(raw.get("dependsOn", ())),
            ready_when=tuple(_with_defaults(p) for p in raw.get("readyWhen", ())),
            apply_mode=apply_policy.get("mode", "Apply"),
            conflict_policy=apply_policy.get("conflictPolicy", "Error"),
            deletion_policy=raw.get("deletionPolicy", "Delete"),
            waiting_for=tuple(raw.get("waitingFor", ())),
            adoption=raw.get("adoption", ""),
        )

    def to_dict(self) -> dict[str, Any]:
        """The node as written in a ResourceGraph (and printed by `pequod render`)."""
        result: dict[str, Any] = {"id": self.id, "object": self.object}
        if self.depends_on:
            result["dependsOn"] = list(self.depends_on)
        if self.ready_when:
            result["readyWhen"] = list(self.ready_when)
        result["applyPolicy"] = {"mode": self.apply_mode, "conflictPolicy": self.conflict_policy}
        result["deletionPolicy"] = self.deletion_policy
        if self.waiting_for:
            result["waitingFor"] = list(self.waiting_for)
        if self.adoption:
            result["adoption"] = self.adoption
        return result


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    violations: tuple[Violation, ...] = field(default=())

    def node(self, node_id: str) -> Node:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": [node.to_dict() for node in self.nodes],
            "violations": [v.to_dict() for v in self.violations],
        }


def _with_defaults(predicate: dict[str, Any]) -> dict[str, Any]:
    if predicate["type"] == "ConditionMatch":
        return {"status": "True", **predicate}
    return predicate
