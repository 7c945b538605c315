"""The dry run of one node (a graph with ``spec.dryRun``): the API server validates and defaults
the object (``dryRun=All``), nothing is stored, and the node reports what a real pass would do."""

from __future__ import annotations

from typing import Any

from pequod.executor.compare import changed_fields, up_to_date
from pequod.executor.result import ERROR, PLANNED, NodeStatus
from pequod.executor.ssa import ServerSideApply
from pequod.graph.model import Node
from pequod.kube.client import ApiError
from pequod.kube.resources import ResourceType


async def plan_node(
    ssa: ServerSideApply,
    rt: ResourceType,
    node: Node,
    desired: dict[str, Any],
    live: dict[str, Any] | None,
    status: NodeStatus,
) -> bool:
    """Plans one node into ``status``; True lets its dependents be planned too."""
    status.phase = PLANNED
    if live is not None and node.create_only:
        status.ready_details = "exists; CreateOnly leaves it unchanged"
        return True
    if live is not None and up_to_date(live, desired):
        status.ready_details = "up to date"
        return True
    async with ssa.limit:
        try:
            await ssa.apply(rt, desired, force=node.force_conflicts, dry_run=True)
        except ApiError as error:
            if not error.conflict or live is None:
                raise
            co_owned = await ssa.co_owner_conflict(rt, live, error)
            if co_owned:
                status.phase = ERROR
                status.last_error = co_owned
                return False
            status.ready_details = "would correct drift: " + ", ".join(
                changed_fields(live, desired)
            )
            return True
    if live is None:
        status.ready_details = "would create"
    else:
        status.ready_details = "would update: " + ", ".join(changed_fields(live, desired))
    return True
