"""Ownership marks: the labels and annotations that say an object (a rendered object, a
ResourceGraph, a generated CRD) is Pequod's and whose it is, and how to read them back."""

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
    RESOURCE_GRAPH_ANNOTATION,
    TRANSFORM_LABEL,
)
from pequod.api.resource_graph import ResourceGraph, SourceRef

MANAGED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
"""The label selector of everything Pequod manages (its informers watch only these)."""


def instance_labels(transform: str, kind: str, name: str, uid: str | None = None) -> dict[str, str]:
    """The labels naming an instance, on its ResourceGraph (without ``uid``) and on every object
    applied for it (with ``uid``, which decides ownership)."""
    labels = {
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
        TRANSFORM_LABEL: transform,
        INSTANCE_KIND_LABEL: kind,
        INSTANCE_NAME_LABEL: name,
    }
    if uid is not None:
        labels[INSTANCE_UID_LABEL] = uid
    return labels


def crd_labels(transform: str) -> dict[str, str]:
    """The labels of the CRD a Transform serves."""
    return {MANAGED_BY_LABEL: MANAGED_BY_VALUE, TRANSFORM_LABEL: transform}


def served_by(crd: dict[str, Any], transform: str) -> bool:
    """Whether ``crd`` is the one ``transform`` generated."""
    return (crd["metadata"].get("labels") or {}).get(TRANSFORM_LABEL) == transform


def mark(obj: dict[str, Any], graph: ResourceGraph, node_id: str) -> dict[str, Any]:
    """A copy of ``obj`` carrying labels naming its instance and an annotation naming its node."""
    marked = copy.deepcopy(obj)
    metadata = marked.setdefault("metadata", {})
    source = graph.spec.source
    labels = metadata.setdefault("labels", {})
    labels.update(
        instance_labels(graph.spec.metadata.transform, source.kind, source.name, source.uid)
    )
    annotations = metadata.setdefault("annotations", {})
    annotations[NODE_ID_ANNOTATION] = node_id
    annotations[RESOURCE_GRAPH_ANNOTATION] = f"{graph.namespace}/{graph.name}"
    return marked


def owner_description(live: dict[str, Any]) -> str:
    labels = live.get("metadata", {}).get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
        return "it exists and is not managed by Pequod"
    return (
        f"it belongs to {labels.get(INSTANCE_KIND_LABEL, '?')} "
        f"{labels.get(INSTANCE_NAME_LABEL, '?')} (uid {labels.get(INSTANCE_UID_LABEL, '?')})"
    )


def owned_by(live: dict[str, Any], source: SourceRef) -> bool:
    """Whether ``live`` belongs to the instance ``source`` names: its instance-uid label says so
    (the other labels may have drifted, and are put back by the next apply)."""
    labels = live.get("metadata", {}).get("labels") or {}
    return bool(source.uid) and labels.get(INSTANCE_UID_LABEL) == source.uid


def graph_of(obj: dict[str, Any]) -> tuple[str, str] | None:
    """The (namespace, name) of the ResourceGraph an applied object belongs to."""
    value = (obj.get("metadata", {}).get("annotations") or {}).get(RESOURCE_GRAPH_ANNOTATION)
    if not value or "/" not in value:
        return None
    namespace, _, name = value.partition("/")
    return namespace, name
