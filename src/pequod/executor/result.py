"""What a pass over a ResourceGraph found and did: each node's status, the graph's inventory,
and the change set (which objects were created, configured, left unchanged, pruned or left
behind), from which the controller writes the graph's status and its Events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

from pequod.api.resource_graph import InventoryEntry

NodePhase = Literal[
    "Pending",
    "Waiting",
    "Applying",
    "Applied",
    "Adopted",
    "Ready",
    "Error",
    "Blocked",
    "Planned",
]
PENDING: Final = "Pending"
WAITING: Final = "Waiting"
"""The node's object needs observed values not known yet (``Node.waiting_for``), or it
depends on a node that does."""
APPLYING: Final = "Applying"
APPLIED: Final = "Applied"
ADOPTED: Final = "Adopted"
"""This pass took over the node's object, which existed without Pequod (adoption
``TakeOwnership``); the next pass says whether it is Ready."""
READY: Final = "Ready"
ERROR: Final = "Error"
BLOCKED: Final = "Blocked"
PLANNED: Final = "Planned"
PHASES: tuple[NodePhase, ...] = (
    PENDING,
    WAITING,
    APPLYING,
    APPLIED,
    ADOPTED,
    READY,
    ERROR,
    BLOCKED,
    PLANNED,
)

GraphPhase = Literal["Ready", "Executing", "Failed", "DryRun"]

Change = Literal["created", "configured", "adopted", "unchanged"]
"""What a pass did to a node's object: created it, changed it, took it over (it existed
without Pequod), or found it as it should be."""


@dataclass(frozen=True)
class Adoption:
    """An object a pass took over: what an Event about it says."""

    node_id: str
    object: dict[str, Any]
    """The object as the API server returned it after the take-over."""
    previous_managers: tuple[str, ...]
    changed: tuple[str, ...]
    """Paths of the fields the take-over changed (empty: the object already held them)."""

    def describe(self) -> str:
        metadata = self.object["metadata"]
        managers = ", ".join(self.previous_managers) or "no field manager"
        changed = f"; changed {', '.join(self.changed)}" if self.changed else "; no field changed"
        return (
            f"adopted {self.object.get('kind')} {metadata['name']} (node {self.node_id}) "
            f"from {managers}{changed}"
        )


@dataclass
class NodeStatus:
    id: str
    phase: NodePhase = PENDING
    last_error: str = ""
    ready_details: str = ""
    applied_at: str = ""
    change: Change | None = None
    """What this pass did to the node's object (not part of the status); None when the pass
    did not get as far as the object (an error, a dependency not ready, a dry run)."""
    drift_corrected: bool = False
    """This pass took back fields of the object that ad-hoc updates had changed."""
    adopted_at: str = ""
    adopted_from: tuple[str, ...] = ()
    """When Pequod took the object over, and from which field managers (as the object's
    annotations say: they outlive any graph)."""
    adoption: Adoption | None = None
    """The take-over this pass did (not part of the status)."""

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"id": self.id, "phase": self.phase}
        if self.last_error:
            result["lastError"] = self.last_error
        if self.ready_details:
            result["readyDetails"] = self.ready_details
        if self.applied_at:
            result["appliedAt"] = self.applied_at
        if self.adopted_at:
            result["adoptedAt"] = self.adopted_at
            result["adoptedFrom"] = list(self.adopted_from)
        return result


@dataclass
class ChangeSet:
    """The objects a pass changed, or left alone: the nodes' in the graph's node order, the
    pruned ones in the inventory's."""

    nodes: list[tuple[str, Change]] = field(default_factory=list)
    """Per node whose object the pass reached: its id and what the pass did to the object."""
    drift_corrected: list[str] = field(default_factory=list)
    """Node ids whose object had fields changed by ad-hoc updates, taken back."""
    adopted: list[Adoption] = field(default_factory=list)
    """Objects taken over (they existed without Pequod), in the graph's node order."""
    pruned: list[InventoryEntry] = field(default_factory=list)
    """Objects deleted because they left the graph (in a dry run: that would be deleted)."""
    skipped: list[InventoryEntry] = field(default_factory=list)
    """Objects that left the graph and stay: orphaned, pruning disabled, or no longer the
    instance's."""

    def _with(self, change: Change) -> list[str]:
        return [node_id for node_id, done in self.nodes if done == change]

    @property
    def created(self) -> list[str]:
        return self._with("created")

    @property
    def configured(self) -> list[str]:
        return self._with("configured")

    @property
    def unchanged(self) -> list[str]:
        return self._with("unchanged")

    @property
    def applied(self) -> list[str]:
        """Node ids whose object the pass created or configured."""
        return [node_id for node_id, done in self.nodes if done != "unchanged"]

    @classmethod
    def of_nodes(cls, statuses: dict[str, NodeStatus]) -> ChangeSet:
        """The nodes' part of a change set, from their statuses (in the graph's order)."""
        return cls(
            nodes=[(s.id, s.change) for s in statuses.values() if s.change is not None],
            drift_corrected=[s.id for s in statuses.values() if s.drift_corrected],
            adopted=[s.adoption for s in statuses.values() if s.adoption is not None],
        )


@dataclass
class PassResult:
    nodes: dict[str, NodeStatus]
    inventory: list[InventoryEntry]
    dry_run: bool = False
    retry_after: float | None = None
    changes: ChangeSet = field(default_factory=ChangeSet)
    observed: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per node id the graph observes (``spec.observe.nodes``): the declared paths of its
    live object, as found (written into ``status.observed``)."""
    kept: list[InventoryEntry] = field(default_factory=list)
    """Objects of nodes adopted with ``Observe``: never in the inventory, never pruned."""
    superseded: bool = False
    """Every node that waits waits only for values of the graph's own nodes that this pass
    found: the instance controller renders a graph with them, which replaces this one."""

    @property
    def phase(self) -> GraphPhase:
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

    @property
    def pruned(self) -> list[str]:
        """``Kind/name`` of each object pruned (in a dry run: that would be)."""
        return [entry.describe() for entry in self.changes.pruned]
