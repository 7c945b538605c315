"""The hand-over of field ownership after a take-over: Pequod's forced server-side apply makes
it an owner of every field it renders, but a field whose value did not change stays shared with
the managers that set it before (``kubectl-client-side-apply``, ``kubectl-create``, ``helm``).
Shared, such a field would outlive its removal from the render. So those fields are removed
from the other managers' sets (``metadata.managedFields``, written back in one patch); the
fields Pequod does not render stay theirs."""

from __future__ import annotations

import copy
from typing import Any

from pequod.api.names import FIELD_MANAGER
from pequod.kube.client import ApiError, KubeClient
from pequod.kube.resources import ResourceType

FieldSet = dict[str, Any]
"""A ``fieldsV1`` trie: keys ``f:NAME``, ``k:{...}``, ``v:...``, ``i:N`` and ``.`` (the
element itself); a leaf is ``{}``."""

HAND_OVER_ATTEMPTS = 3
"""The patch carries the resourceVersion it was computed from: a write in between makes it
fail (409), and it is computed again from the object as it is then."""


def previous_managers(managed_fields: list[dict[str, Any]], manager: str) -> list[str]:
    """The field managers of the object's main resource other than ``manager`` (a status
    writer is not a previous owner of what Pequod renders)."""
    return sorted(
        {
            str(entry.get("manager", "?"))
            for entry in managed_fields
            if entry.get("manager") != manager and not entry.get("subresource")
        }
    )


def handed_over(managed_fields: list[dict[str, Any]], manager: str) -> list[dict[str, Any]] | None:
    """``managed_fields`` with every field that ``manager``'s Apply entry owns removed from the
    other entries of the main resource (an entry left with nothing is dropped); None when no
    other entry shares such a field."""
    own = next(
        (
            e
            for e in managed_fields
            if e.get("manager") == manager
            and e.get("operation") == "Apply"
            and not e.get("subresource")
        ),
        None,
    )
    if own is None or not own.get("fieldsV1"):
        return None
    owned: FieldSet = own["fieldsV1"]
    result: list[dict[str, Any]] = []
    changed = False
    for entry in managed_fields:
        if entry is own or entry.get("subresource") or not entry.get("fieldsV1"):
            result.append(entry)
            continue
        remaining = _without(entry["fieldsV1"], owned)
        if remaining == entry["fieldsV1"]:
            result.append(entry)
            continue
        changed = True
        if remaining:
            result.append({**entry, "fieldsV1": remaining})
    return result if changed else None


def _without(fields: FieldSet, owned: FieldSet) -> FieldSet:
    """``fields`` less what ``owned`` holds: a leaf both hold goes; a subtree both hold as
    subtrees is subtracted in turn, and goes when nothing but ``.`` is left of it. A leaf one
    side holds where the other has a subtree is kept (the two sets see the field differently,
    atomic and granular: better shared than guessed)."""
    result: FieldSet = {}
    for key, value in fields.items():
        if key not in owned:
            result[key] = copy.deepcopy(value)
            continue
        theirs = owned[key]
        if not value and not theirs:
            continue  # a leaf both own
        if not value or not theirs:
            result[key] = copy.deepcopy(value)
            continue
        rest = _without(value, theirs)
        # Left with the element itself only (``.``, "the map exists"), it holds nothing of
        # its own: what is in it is Pequod's.
        if rest and set(rest) != {"."}:
            result[key] = rest
    return result


async def hand_over(
    client: KubeClient, rt: ResourceType, obj: dict[str, Any], manager: str = FIELD_MANAGER
) -> dict[str, Any]:
    """Makes ``manager`` the only owner of the fields it applied to ``obj`` (as the API server
    returned it, with its managedFields); returns the object as it is afterwards."""
    current = obj
    for attempt in range(HAND_OVER_ATTEMPTS):
        metadata = current["metadata"]
        fields = handed_over(metadata.get("managedFields") or [], manager)
        if fields is None:
            return current
        patch = {
            "metadata": {"managedFields": fields, "resourceVersion": metadata["resourceVersion"]}
        }
        try:
            patched: dict[str, Any] = await client.merge_patch(
                rt, metadata["name"], metadata.get("namespace"), patch, field_manager=manager
            )
            return patched
        except ApiError as error:
            if not error.conflict or attempt == HAND_OVER_ATTEMPTS - 1:
                raise
        fresh = await client.get(rt, metadata["name"], metadata.get("namespace"))
        if fresh is None:
            return current
        current = fresh
    return current
