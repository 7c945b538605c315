"""An instance's revisions: each distinct ResourceGraph it has been given, kept as an
immutable ``apps/v1`` ControllerRevision (as StatefulSets and DaemonSets keep theirs) owned by
the instance, so that it can be put back without a render. Names, labels and the object; how
to read one back."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from pequod.api.names import INSTANCE_UID_LABEL
from pequod.api.resource_graph import ResourceGraphSpec, controller_reference
from pequod.kube.resources import ResourceType

CONTROLLER_REVISIONS = ResourceType("apps", "v1", "ControllerRevision", "controllerrevisions", True)

MODULE_REF_ANNOTATION = "platform.pequod.io/module-ref"
MODULE_DIGEST_ANNOTATION = "platform.pequod.io/module-digest"
RENDER_HASH_ANNOTATION = "platform.pequod.io/render-hash"
APPLIED_AT_ANNOTATION = "platform.pequod.io/applied-at"
OUTCOME_ANNOTATION = "platform.pequod.io/outcome"
"""``Ready`` (the graph reached Ready) or ``Failed`` (it failed before it did)."""
READY_AT_ANNOTATION = "platform.pequod.io/ready-at"

REVISION_OF_LABEL = "platform.pequod.io/revision-of"
"""On a revision: the uid of its instance. Only Pequod's revisions carry it (a StatefulSet's
ControllerRevisions carry its pod template's labels, Pequod's among them when a module puts them
there), so the admission policy that keeps them the operator's selects on it."""

READY = "Ready"
FAILED = "Failed"
DEFAULT_REVISION_LIMIT = 10


def revision_name(graph_name: str, render_hash: str) -> str:
    """``GRAPH-HASH10``: one name per distinct graph, so the same graph given again is the
    same revision (its number moves to the newest)."""
    digest = render_hash.rpartition(":")[2]
    return f"{graph_name[:242]}-{digest[:10]}"


def revisions_selector(instance_uid: str) -> str:
    return f"{REVISION_OF_LABEL}={instance_uid}"


def is_revision_of(obj: Mapping[str, Any], instance_uid: str) -> bool:
    """Whether ``obj`` is a revision Pequod keeps of that instance (its labels say so; the
    admission policy lets only the operator write objects with them)."""
    labels = obj["metadata"].get("labels") or {}
    return labels.get(REVISION_OF_LABEL) == instance_uid


@dataclass(frozen=True)
class RevisionEntry:
    """What a revision says of itself without its graph: its number, what rendered it and how
    it went. The operator keeps these in memory per instance; the graph is read when needed."""

    name: str
    number: int
    module_ref: str
    module_digest: str
    render_hash: str
    applied_at: str
    outcome: str
    ready_at: str

    @property
    def reached_ready(self) -> bool:
        return bool(self.ready_at)

    def to_status(self) -> dict[str, Any]:
        """What the instance's ``status.revision`` says of the revision in force."""
        return {"number": self.number, "name": self.name, "outcome": self.outcome}

    def entry(self) -> RevisionEntry:
        """The entry alone (a :class:`Revision` without its graph)."""
        return RevisionEntry(**{f.name: getattr(self, f.name) for f in fields(RevisionEntry)})


@dataclass(frozen=True)
class Revision(RevisionEntry):
    """A revision as read back, with the graph it keeps."""

    spec: ResourceGraphSpec

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> Revision:
        return cls(**_entry_fields(obj), spec=ResourceGraphSpec.from_dict(obj["data"]))


def parse_entry(obj: Mapping[str, Any]) -> RevisionEntry:
    """A ControllerRevision's entry, without reading its graph."""
    return RevisionEntry(**_entry_fields(obj))


def _entry_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    annotations = obj["metadata"].get("annotations") or {}
    return {
        "name": obj["metadata"]["name"],
        "number": int(obj.get("revision") or 0),
        "module_ref": annotations.get(MODULE_REF_ANNOTATION, ""),
        "module_digest": annotations.get(MODULE_DIGEST_ANNOTATION, ""),
        "render_hash": annotations.get(RENDER_HASH_ANNOTATION, ""),
        "applied_at": annotations.get(APPLIED_AT_ANNOTATION, ""),
        "outcome": annotations.get(OUTCOME_ANNOTATION, ""),
        "ready_at": annotations.get(READY_AT_ANNOTATION, ""),
    }


def revision_object(
    name: str,
    namespace: str,
    number: int,
    labels: Mapping[str, str],
    owner: Mapping[str, Any],
    spec: ResourceGraphSpec,
    *,
    module_digest: str,
    applied_at: str,
    outcome: str,
    ready_at: str | None,
) -> dict[str, Any]:
    """The ControllerRevision of a graph, owned (and garbage-collected) by the instance."""
    metadata = owner["metadata"]
    annotations = {
        MODULE_REF_ANNOTATION: spec.metadata.platform_ref,
        MODULE_DIGEST_ANNOTATION: module_digest,
        RENDER_HASH_ANNOTATION: spec.metadata.render_hash,
        APPLIED_AT_ANNOTATION: applied_at,
        OUTCOME_ANNOTATION: outcome,
    }
    if ready_at:
        annotations[READY_AT_ANNOTATION] = ready_at
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                **labels,
                INSTANCE_UID_LABEL: metadata["uid"],
                REVISION_OF_LABEL: metadata["uid"],
            },
            "annotations": annotations,
            "ownerReferences": [controller_reference(owner, block_owner_deletion=False)],
        },
        "revision": number,
        "data": spec.to_dict(),
    }


def beyond_limit(revisions: Iterable[RevisionEntry], limit: int, keep: str) -> list[RevisionEntry]:
    """The oldest revisions past ``limit`` (never ``keep``, the one in force)."""
    ordered = sorted(revisions, key=lambda r: r.number, reverse=True)
    kept = {keep}
    for revision in ordered:
        if len(kept) >= limit:
            break
        kept.add(revision.name)
    return [r for r in ordered if r.name not in kept]
