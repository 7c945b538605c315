"""Pequod's names: its API group and kinds, the field manager, the labels and annotations it
writes on what it manages, its annotations read from users, its finalizers, and the name of an
instance's ResourceGraph. Every module that writes or reads one of these takes it from here."""

from __future__ import annotations

GROUP = "platform.pequod.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

TRANSFORM_KIND = "Transform"
TRANSFORM_PLURAL = "transforms"
RESOURCE_GRAPH_KIND = "ResourceGraph"
RESOURCE_GRAPH_PLURAL = "resourcegraphs"

FIELD_MANAGER = "pequod"
"""The field manager of everything the operator applies (see docs on apply ownership)."""

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "pequod"
TRANSFORM_LABEL = "platform.pequod.io/transform"
INSTANCE_KIND_LABEL = "platform.pequod.io/instance-kind"
INSTANCE_NAME_LABEL = "platform.pequod.io/instance-name"
INSTANCE_UID_LABEL = "platform.pequod.io/instance-uid"
NODE_ID_ANNOTATION = "platform.pequod.io/node-id"
RESOURCE_GRAPH_ANNOTATION = "platform.pequod.io/resource-graph"
"""On an applied object: ``NAMESPACE/NAME`` of the ResourceGraph it belongs to."""
ORPHANED_ANNOTATION = "platform.pequod.io/orphaned"
"""On an object its node's ``deletionPolicy: Orphan`` let go when the node left the graph."""
ADOPTED_AT_ANNOTATION = "platform.pequod.io/adopted-at"
"""On an object Pequod took over (adoption ``TakeOwnership``): when it did."""
ADOPTED_FROM_ANNOTATION = "platform.pequod.io/adopted-from"
"""On an object Pequod took over: the field managers it had before, comma-separated."""
CRD_HASH_ANNOTATION = "platform.pequod.io/crd-hash"
"""On a generated CRD: the hash of what was applied, so an unchanged CRD is not applied again."""

ALLOW_BREAKING_CHANGES_ANNOTATION = "pequod.io/allow-breaking-changes"
PRUNE_ANNOTATION = "pequod.io/prune"
ADOPT_ANNOTATION = "pequod.io/adopt"
"""On an instance: the objects it takes over that exist without it (``TakeOwnership`` or
``Observe``, for every node or as ``NODE=STRATEGY,...``; :mod:`pequod.api.adoption`)."""
DRY_RUN_ANNOTATION = "pequod.io/dry-run"
"""On an instance, ``"true"`` renders and validates its graph without applying anything."""
ROLLBACK_ANNOTATION = "pequod.io/rollback-to"
"""An instance's request to be put back to one of its revisions (its number), until its spec
or its module changes again."""

TRANSFORM_FINALIZER = "platform.pequod.io/transform-cleanup"
INSTANCE_FINALIZER = "platform.pequod.io/instance-cleanup"
RESOURCE_GRAPH_FINALIZER = "platform.pequod.io/resourcegraph-cleanup"

OPERATOR_NAMESPACE = "pequod-system"
OPERATOR_SERVICE_ACCOUNT = "pequod"
OPERATOR_USERNAME = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"


def resource_graph_name(kind: str, name: str) -> str:
    """The ResourceGraph of an instance: derived from its kind and name."""
    return f"{kind.lower()}-{name}"[:253]
