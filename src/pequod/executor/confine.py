"""Where a node's object may go: its graph's namespace, the namespaces its Transform allows, and
the cluster scope only when the Transform allows that. The render checked this already; the
executor checks again before each write (defence in depth: a graph is data anyone with write
access to ResourceGraphs could have changed)."""

from __future__ import annotations

from typing import Any

from pequod.api.resource_graph import ResourceGraph
from pequod.kube.client import ApiError
from pequod.kube.resources import ResourceType


def confine(graph: ResourceGraph, rt: ResourceType, desired: dict[str, Any]) -> str | None:
    """The namespace ``desired`` goes to (None: cluster-scoped), defaulted in ``desired`` to the
    graph's; raises a 403 ApiError (a permanent node error) where it may not go."""
    metadata = desired["metadata"]
    settings = graph.spec.metadata
    if not rt.namespaced:
        metadata.pop("namespace", None)
        if not settings.allow_cluster_scoped:
            raise ApiError(
                403,
                "Forbidden",
                f"{rt.kind} is cluster-scoped and the Transform does not allow that",
            )
        return None
    namespace = metadata.setdefault("namespace", graph.namespace)
    allowed = set(settings.allowed_namespaces) | {graph.namespace}
    if namespace not in allowed and "*" not in allowed:
        raise ApiError(
            403, "Forbidden", f"namespace {namespace!r} is not allowed for this instance"
        )
    return str(namespace)


def writable_namespaces(graph: ResourceGraph) -> list[str | None]:
    """The namespaces to search for the graph's objects (None: all of them)."""
    allowed = set(graph.spec.metadata.allowed_namespaces)
    namespaces: list[str | None] = (
        [None] if "*" in allowed else [*sorted(allowed | {graph.namespace})]
    )
    return namespaces
