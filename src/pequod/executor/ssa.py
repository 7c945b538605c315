"""Server-side apply as the executor sends it: Pequod's field manager, at most so many applies
at once, the apply metrics, and the reading of a field conflict (deliberate co-owners, or
drift from ad-hoc updates)."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from pequod.api.names import FIELD_MANAGER
from pequod.kube.client import ApiError, KubeClient
from pequod.kube.resources import ResourceType
from pequod.metrics import APPLY_DURATION, APPLY_TOTAL


class ServerSideApply:
    def __init__(self, client: KubeClient, *, concurrency: int) -> None:
        self.client = client
        self.limit = asyncio.Semaphore(concurrency)
        """Held around each apply (and a conflict's retry) by the caller."""

    async def apply(
        self, rt: ResourceType, desired: dict[str, Any], *, force: bool, dry_run: bool = False
    ) -> dict[str, Any]:
        """``desired`` applied as Pequod (``dryRun=All`` with ``dry_run``): the object as the
        API server returns it."""
        try:
            with APPLY_DURATION.time():
                applied = await self.client.apply(
                    rt, desired, field_manager=FIELD_MANAGER, force=force, dry_run=dry_run
                )
        except ApiError as error:
            APPLY_TOTAL.labels("conflict" if error.conflict else "error").inc()
            raise
        APPLY_TOTAL.labels("dry_run" if dry_run else "success").inc()
        return applied

    async def co_owner_conflict(
        self, rt: ResourceType, live: dict[str, Any], error: ApiError
    ) -> str | None:
        """For a field conflict: the error to report when other server-side appliers own the
        fields (deliberate co-owners), None when only plain updates changed them (drift).
        An applier of other fields of the object is no party to the conflict: only the
        managers the conflict names count. managedFields are read fresh: the cache strips
        them."""
        metadata = live["metadata"]
        fresh = await self.client.get(rt, metadata["name"], metadata.get("namespace"))
        appliers = _other_appliers(fresh if fresh is not None else live)
        named = _conflicting_managers(error)
        if named is not None:
            appliers = [a for a in appliers if a in named]
        if not appliers:
            return None
        return f"field conflict with {', '.join(appliers)}: {error.message}"


def _other_appliers(live: dict[str, Any]) -> list[str]:
    """Field managers other than Pequod that own fields through server-side apply: deliberate
    co-owners, whose fields Pequod does not take without conflictPolicy Force."""
    return sorted(
        {
            entry.get("manager", "?")
            for entry in live.get("metadata", {}).get("managedFields") or []
            if entry.get("operation") == "Apply" and entry.get("manager") != FIELD_MANAGER
        }
    )


_CONFLICT_CAUSE = re.compile(r'^conflict with "((?:[^"\\]|\\.)*)"')


def _conflicting_managers(error: ApiError) -> set[str] | None:
    """The field managers a field conflict names (the Status's FieldManagerConflict causes:
    ``conflict with "gitops" using v1``); None when the answer does not say."""
    body = error.body if isinstance(error.body, dict) else {}
    names: set[str] = set()
    for cause in (body.get("details") or {}).get("causes") or []:
        if cause.get("reason") != "FieldManagerConflict":
            continue
        match = _CONFLICT_CAUSE.match(str(cause.get("message", "")))
        if match:
            names.add(re.sub(r"\\(.)", r"\1", match.group(1)))
    return names or None
