"""The two writes every controller makes to the objects it reconciles: finalizers and status.
Both name the controller's field manager; a status is written only when it changed. Also how
a refusal for good (not ``ApiError.transient``) is reported."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import structlog

from pequod.kube.client import ApiError, KubeClient
from pequod.kube.conditions import set_condition
from pequod.kube.events import EventRecorder
from pequod.kube.resources import ResourceType

logger = structlog.get_logger(__name__)


FINALIZER_ATTEMPTS = 3


@dataclass(frozen=True)
class ObjectWriter:
    """Finalizer and status writes, as ``field_manager``; refusals are reported to ``events``."""

    client: KubeClient
    events: EventRecorder
    field_manager: str

    async def set_finalizers(
        self, rt: ResourceType, obj: dict[str, Any], finalizers: list[str]
    ) -> None:
        await set_finalizers(self.client, rt, obj, finalizers, field_manager=self.field_manager)

    async def write_status(
        self, rt: ResourceType, obj: dict[str, Any], status: dict[str, Any]
    ) -> bool:
        return await write_status(self.client, rt, obj, status, field_manager=self.field_manager)

    async def write_status_or_refusal(
        self,
        rt: ResourceType,
        obj: dict[str, Any],
        status: dict[str, Any],
        *,
        kept: tuple[str, ...] = (),
    ) -> bool:
        return await write_status_or_refusal(
            self.client, self.events, rt, obj, status, kept=kept, field_manager=self.field_manager
        )


async def set_finalizers(
    client: KubeClient,
    rt: ResourceType,
    obj: dict[str, Any],
    finalizers: list[str],
    *,
    field_manager: str,
) -> None:
    """Replaces the finalizers, guarded by resourceVersion; an object already gone is fine.

    ``obj`` often comes from a cache that has not seen the controller's own last write (a
    status) yet: on a conflict the object is read again and the same change (the finalizers
    added and removed) is made to what it holds now, as client-go's RetryOnConflict would."""
    metadata = obj["metadata"]
    before = list(metadata.get("finalizers") or [])
    added = [f for f in finalizers if f not in before]
    removed = {f for f in before if f not in finalizers}
    wanted = finalizers
    resource_version = metadata["resourceVersion"]
    for attempt in range(FINALIZER_ATTEMPTS):
        try:
            await client.merge_patch(
                rt,
                metadata["name"],
                metadata.get("namespace"),
                {"metadata": {"finalizers": wanted, "resourceVersion": resource_version}},
                field_manager=field_manager,
            )
            return
        except ApiError as error:
            if error.not_found:
                return
            if not error.conflict or attempt == FINALIZER_ATTEMPTS - 1:
                raise
        fresh = await client.get(rt, metadata["name"], metadata.get("namespace"))
        if fresh is None or fresh["metadata"].get("uid") != metadata.get("uid"):
            return  # gone, or another object of the same name: nothing of ours to change
        current = list(fresh["metadata"].get("finalizers") or [])
        wanted = [f for f in current if f not in removed] + [f for f in added if f not in current]
        if wanted == current:
            return
        resource_version = fresh["metadata"]["resourceVersion"]


async def write_status(
    client: KubeClient,
    rt: ResourceType,
    obj: dict[str, Any],
    status: dict[str, Any],
    *,
    field_manager: str,
) -> bool:
    """Writes ``status`` unless it equals the stored one. Returns whether it wrote. A field
    whose value is None is removed (a merge patch's null), and is equal to a field not there."""
    stored = obj.get("status") or {}
    effective = {k: v for k, v in status.items() if v is not None}
    if json.dumps(effective, sort_keys=True) == json.dumps(stored, sort_keys=True):
        return False
    status = {k: v for k, v in status.items() if v is not None or k in stored}
    metadata = obj["metadata"]
    logger.debug(
        "status write",
        object=f"{rt.kind} {metadata.get('namespace', '')}/{metadata['name']}",
        changed=sorted(
            k for k in {*status, *stored} if json.dumps(status.get(k)) != json.dumps(stored.get(k))
        ),
    )
    try:
        await client.merge_patch(
            rt,
            metadata["name"],
            metadata.get("namespace"),
            {"status": status},
            subresource="status",
            field_manager=field_manager,
        )
    except ApiError as error:
        if error.not_found:
            return False
        raise
    return True


def refusal(error: ApiError) -> str:
    """The API server's answer, short enough for a condition message."""
    return f"{error.status} {error.reason}: {error.message}"[:1024]


async def write_status_or_refusal(
    client: KubeClient,
    events: EventRecorder,
    rt: ResourceType,
    obj: dict[str, Any],
    status: dict[str, Any],
    *,
    kept: tuple[str, ...] = (),
    field_manager: str,
) -> bool:
    """Writes ``status`` (see :func:`write_status`); returns whether it wrote. A status the API
    server refuses for good (an admission policy, a schema, a size) is replaced by one holding
    only a Ready=False ``StatusRejected`` condition with the API server's answer, and the
    ``kept`` fields, so ``kubectl get`` still says why; a Warning Event says it too. Transient
    errors are raised, for the work queue to retry."""
    try:
        return await write_status(client, rt, obj, status, field_manager=field_manager)
    except ApiError as error:
        if error.transient:
            raise
        message = f"the API server refused the {rt.kind}'s status: {refusal(error)}"
    generation = obj["metadata"].get("generation")
    conditions = set_condition(
        status.get("conditions") or [], "Ready", False, "StatusRejected", message, generation
    )
    minimal = {
        "phase": "Failed",
        "observedGeneration": generation,
        "conditions": conditions,
        **{field: status[field] for field in kept if field in status},
    }
    try:
        written = await write_status(client, rt, obj, minimal, field_manager=field_manager)
    except ApiError as error:
        if error.transient:
            raise
        written = False
        message += f"; a status with only this condition was refused too: {error.message}"
    logger.warning("status refused", object=f"{rt.kind} {obj['metadata']['name']}", message=message)
    await events.record(obj, "Warning", "StatusRejected", message)
    return written
