"""How applied objects are marked as Pequod's, and whose they are."""

from __future__ import annotations

import copy
from typing import Any

from pequod.api.names import (
    INSTANCE_KIND_LABEL,
    INSTANCE_NAME_LABEL,
    INSTANCE_UID_LABEL,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    NODE_ID_ANNOTATION,
    TRANSFORM_LABEL,
)

RESOURCE_GRAPH_ANNOTATION = "platform.pequod.io/resource-graph"
ORPHANED_ANNOTATION = "platform.pequod.io/orphaned"
"""On an object its node's ``deletionPolicy: Orphan`` let go when the node left the graph."""


def mark(obj: dict[str, Any], graph: dict[str, Any], node_id: str) -> dict[str, Any]:
    """A copy of ``obj`` carrying labels naming its instance and an annotation naming its node."""
    marked = copy.deepcopy(obj)
    metadata = marked.setdefault("metadata", {})
    source = graph["spec"]["sourceRef"]
    graph_metadata = graph["metadata"]
    labels = metadata.setdefault("labels", {})
    labels.update(
        {
            MANAGED_BY_LABEL: MANAGED_BY_VALUE,
            TRANSFORM_LABEL: graph["spec"].get("metadata", {}).get("transform", ""),
            INSTANCE_KIND_LABEL: source["kind"],
            INSTANCE_NAME_LABEL: source["name"],
            INSTANCE_UID_LABEL: source.get("uid", ""),
        }
    )
    annotations = metadata.setdefault("annotations", {})
    annotations[NODE_ID_ANNOTATION] = node_id
    annotations[RESOURCE_GRAPH_ANNOTATION] = (
        f"{graph_metadata['namespace']}/{graph_metadata['name']}"
    )
    return marked


def owner_description(live: dict[str, Any]) -> str:
    labels = live.get("metadata", {}).get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
        return "it exists and is not managed by Pequod"
    return (
        f"it belongs to {labels.get(INSTANCE_KIND_LABEL, '?')} "
        f"{labels.get(INSTANCE_NAME_LABEL, '?')} (uid {labels.get(INSTANCE_UID_LABEL, '?')})"
    )


def owned_by(live: dict[str, Any], graph: dict[str, Any]) -> bool:
    """Whether ``live`` belongs to the graph's instance: its instance-uid label says so (the
    other labels may have drifted, and are put back by the next apply)."""
    labels = live.get("metadata", {}).get("labels") or {}
    uid = graph["spec"]["sourceRef"].get("uid", "")
    return bool(uid) and labels.get(INSTANCE_UID_LABEL) == uid


def graph_of(obj: dict[str, Any]) -> tuple[str, str] | None:
    """The (namespace, name) of the ResourceGraph an applied object belongs to."""
    value = (obj.get("metadata", {}).get("annotations") or {}).get(RESOURCE_GRAPH_ANNOTATION)
    if not value or "/" not in value:
        return None
    namespace, _, name = value.partition("/")
    return namespace, name
