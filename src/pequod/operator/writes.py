"""The two writes every controller makes to the objects it reconciles: finalizers and status.
Both name the operator as field manager; a status is written only when it changed. Also which
refusals of a write are for good (to report in a condition) and which are worth a retry."""

from __future__ import annotations

import json
from typing import Any

import structlog

from pequod.api.names import FIELD_MANAGER
from pequod.kube.client import ApiError, KubeClient
from pequod.kube.resources import ResourceType

logger = structlog.get_logger(__name__)


async def set_finalizers(
    client: KubeClient, rt: ResourceType, obj: dict[str, Any], finalizers: list[str]
) -> None:
    """Replaces the finalizers, guarded by resourceVersion; an object already gone is fine."""
    metadata = obj["metadata"]
    try:
        await client.merge_patch(
            rt,
            metadata["name"],
            metadata.get("namespace"),
            {
                "metadata": {
                    "finalizers": finalizers,
                    "resourceVersion": metadata["resourceVersion"],
                }
            },
            field_manager=FIELD_MANAGER,
        )
    except ApiError as error:
        if not error.not_found:
            raise


async def write_status(
    client: KubeClient, rt: ResourceType, obj: dict[str, Any], status: dict[str, Any]
) -> bool:
    """Writes ``status`` unless it equals the stored one. Returns whether it wrote."""
    stored = obj.get("status") or {}
    if json.dumps(status, sort_keys=True) == json.dumps(stored, sort_keys=True):
        return False
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
            field_manager=FIELD_MANAGER,
        )
    except ApiError as error:
        if error.not_found:
            return False
        raise
    return True


def refused_for_good(error: ApiError) -> bool:
    """An answer no retry mends: a 4xx other than conflicts and throttling, or etcd's refusal
    of a request over its size limit (which the API server returns as a 500)."""
    return not error.transient or "request is too large" in error.message


def refusal(error: ApiError) -> str:
    """The API server's answer, short enough for a condition message."""
    return f"{error.status} {error.reason}: {error.message}"[:1024]
