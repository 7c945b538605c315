"""Taking over an object that exists without Pequod (a node with adoption ``TakeOwnership``):
whether it may be taken, the forced apply that makes Pequod the owner of the fields it
renders, and the hand-over of those fields from the managers that shared them. An object of
another Pequod instance is never taken.

What was taken over, and from whom, is written on the object itself
(:data:`ADOPTED_AT_ANNOTATION`, :data:`ADOPTED_FROM_ANNOTATION`), with the apply that takes it:
a pass killed after that apply finds it there, and so does a graph written again."""

from __future__ import annotations

from typing import Any

from pequod.api.names import (
    ADOPTED_AT_ANNOTATION,
    ADOPTED_FROM_ANNOTATION,
    FIELD_MANAGER,
    INSTANCE_UID_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
)
from pequod.api.ownership import owner_description
from pequod.clock import timestamp
from pequod.executor.compare import changed_fields
from pequod.executor.managed_fields import hand_over, previous_managers
from pequod.executor.result import Adoption
from pequod.executor.ssa import ServerSideApply
from pequod.graph.model import Node
from pequod.kube.resources import ResourceType


def refusal(live: dict[str, Any], node: Node) -> str | None:
    """Why ``live``, which is not the graph's instance's, may not be taken over by ``node``;
    None when it may (the node asks for TakeOwnership and no other instance owns it)."""
    labels = live.get("metadata", {}).get("labels") or {}
    other_instance = labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE and bool(
        labels.get(INSTANCE_UID_LABEL)
    )
    if other_instance:
        return f"{owner_description(live)}; Pequod never takes over another instance's object"
    if node.adoption != "TakeOwnership":
        return (
            f"{owner_description(live)}; Pequod never takes over an object it does not own "
            "(unless the instance asks: annotation pequod.io/adopt)"
        )
    return None


def adoption_marks(live: dict[str, Any] | None) -> dict[str, str]:
    """The adoption annotations ``live`` carries (kept by every later apply)."""
    annotations = (live or {}).get("metadata", {}).get("annotations") or {}
    return {
        k: annotations[k]
        for k in (ADOPTED_AT_ANNOTATION, ADOPTED_FROM_ANNOTATION)
        if k in annotations
    }


def adopted(live: dict[str, Any]) -> tuple[str, tuple[str, ...]]:
    """When ``live`` was taken over and from which managers ("" and () if it was not)."""
    marks = adoption_marks(live)
    managers = marks.get(ADOPTED_FROM_ANNOTATION, "")
    return marks.get(ADOPTED_AT_ANNOTATION, ""), tuple(m for m in managers.split(",") if m)


def with_adoption_marks(desired: dict[str, Any], marks: dict[str, str]) -> dict[str, Any]:
    if marks:
        desired["metadata"].setdefault("annotations", {}).update(marks)
    return desired


def take_over_body(node: Node, desired: dict[str, Any]) -> dict[str, Any]:
    """What the take-over applies: the rendered object; for a CreateOnly node, Pequod's marks
    alone (it never changes such an object's fields)."""
    if not node.create_only:
        return desired
    metadata = desired["metadata"]
    return {
        "apiVersion": desired["apiVersion"],
        "kind": desired["kind"],
        "metadata": {
            k: metadata[k] for k in ("name", "namespace", "labels", "annotations") if k in metadata
        },
    }


def rendered_changes(node: Node, live: dict[str, Any]) -> list[str]:
    """The fields the module renders that ``live`` holds otherwise (Pequod's own labels and
    annotations are not news)."""
    return [] if node.create_only else changed_fields(live, node.object)


def planned(node: Node, desired: dict[str, Any], live: dict[str, Any]) -> str:
    """What a dry run says of a take-over."""
    managed = live.get("metadata", {}).get("managedFields") or []
    managers = ", ".join(previous_managers(managed, FIELD_MANAGER))
    changes = rendered_changes(node, live)
    changed = f"; would change {', '.join(changes)}" if changes else "; no field would change"
    return f"would adopt from {managers or 'no field manager'}{changed}"


async def take_over(
    ssa: ServerSideApply,
    rt: ResourceType,
    node: Node,
    desired: dict[str, Any],
    live: dict[str, Any],
) -> tuple[dict[str, Any], Adoption]:
    """Takes ``live`` over with ``desired``: applied forcing conflicts with the managers it
    had, then the fields it renders handed over to Pequod alone. Returns the object as the
    API server returns it, and what an Event says of it."""
    managed = live.get("metadata", {}).get("managedFields") or []
    managers = tuple(previous_managers(managed, FIELD_MANAGER))
    body = take_over_body(node, desired)
    changed = tuple(rendered_changes(node, live))
    with_adoption_marks(
        body,
        {ADOPTED_AT_ANNOTATION: timestamp(), ADOPTED_FROM_ANNOTATION: ",".join(managers)},
    )
    async with ssa.limit:
        applied = await ssa.apply(rt, body, force=True)
        applied = await hand_over(ssa.client, rt, applied, FIELD_MANAGER)
    return applied, Adoption(node.id, applied, managers, changed)
