"""Keeps an instance's revisions in the cluster: records the graph in force once its outcome
is known (one write per distinct graph), keeps at most the configured number, reads them back
for a rollback, and deletes them with the instance.

What each instance's revisions are (numbers, hashes, outcomes; not their graphs) is kept in
memory once listed: only the operator writes revisions (an admission policy keeps it so), so
its own creates and deletes keep the list true, and an instance costs one list of its revisions
per process, not one per graph or per pass (a list by label reads every revision of the
namespace)."""

from __future__ import annotations

from typing import Any

import structlog

from pequod.api.ownership import instance_labels
from pequod.api.resource_graph import ResourceGraph
from pequod.api.revisions import (
    CONTROLLER_REVISIONS,
    DEFAULT_REVISION_LIMIT,
    READY,
    Revision,
    RevisionEntry,
    beyond_limit,
    is_revision_of,
    parse_entry,
    revision_name,
    revision_object,
    revisions_selector,
)
from pequod.clock import timestamp
from pequod.kube.client import ApiError, KubeClient

logger = structlog.get_logger(__name__)


class RevisionStore:
    def __init__(self, client: KubeClient, *, limit: int = DEFAULT_REVISION_LIMIT) -> None:
        self.client = client
        self.limit = max(1, limit)
        self._known: dict[str, list[RevisionEntry]] = {}
        """Per instance uid, its revisions as listed and then kept by this store's writes."""

    async def history(
        self, namespace: str, instance_uid: str, *, fresh: bool = False
    ) -> list[RevisionEntry]:
        """The instance's revisions, oldest first; listed once, or again when ``fresh``."""
        known = self._known.get(instance_uid)
        if known is None or fresh:
            listed = await self.client.list(
                CONTROLLER_REVISIONS, namespace, label_selector=revisions_selector(instance_uid)
            )
            known = sorted(
                (parse_entry(obj) for obj in listed.get("items") or ()), key=lambda r: r.number
            )
            self._known[instance_uid] = known
        return list(known)

    def forget(self, instance_uid: str) -> None:
        """Drops what is known of a deleted instance's revisions."""
        self._known.pop(instance_uid, None)

    async def get(self, namespace: str, name: str, instance_uid: str) -> Revision | None:
        """The instance's revision of that name; None for an object of that name that is not
        one (not Pequod's, or another instance's): it is never put back."""
        obj = await self.client.get(CONTROLLER_REVISIONS, name, namespace)
        if obj is None or not is_revision_of(obj, instance_uid):
            return None
        return Revision.parse(obj)

    async def record(
        self,
        instance: dict[str, Any],
        transform: str,
        graph: ResourceGraph,
        module_digest: str,
        outcome: str,
    ) -> RevisionEntry:
        """The revision of ``graph`` with ``outcome``: created as the newest; the same graph given
        again is the same revision, under the same number (a rollback names a revision by its
        number, which stays true); the oldest beyond the limit go."""
        try:
            return await self._record(instance, transform, graph, module_digest, outcome)
        except BaseException:
            # What is known may be behind what was written before the failure: listed again.
            self.forget(instance["metadata"]["uid"])
            raise

    async def _record(
        self,
        instance: dict[str, Any],
        transform: str,
        graph: ResourceGraph,
        module_digest: str,
        outcome: str,
    ) -> RevisionEntry:
        metadata = instance["metadata"]
        namespace = metadata["namespace"]
        name = revision_name(graph.name, graph.spec.metadata.render_hash)
        revisions = await self.history(namespace, metadata["uid"])
        newest = max((r.number for r in revisions), default=0)
        existing = next((r for r in revisions if r.name == name), None)
        ready_at = timestamp() if outcome == READY else None
        if existing is not None:
            if outcome != READY or existing.reached_ready:
                return existing  # recorded as it is: nothing to write
            # A failed revision that is now Ready. Its data is immutable, and the API server
            # refuses any patch of it (it encodes the data again): it is recorded afresh, under
            # the same name and number.
            await self._delete(namespace, name)
            revisions = [r for r in revisions if r.name != name]
        obj = revision_object(
            name,
            namespace,
            existing.number if existing is not None else newest + 1,
            instance_labels(transform, instance["kind"], metadata["name"]),
            instance,
            graph.spec,
            # A revision given again keeps what rendered it.
            module_digest=existing.module_digest if existing else module_digest,
            applied_at=existing.applied_at
            if existing is not None
            else graph.spec.metadata.rendered_at or timestamp(),
            outcome=outcome,
            ready_at=ready_at,
        )
        try:
            revision = parse_entry(await self.client.create(CONTROLLER_REVISIONS, obj))
        except ApiError as error:
            if not error.conflict:
                raise
            # Recorded by a pass before a restart: read it back.
            found = await self.get(namespace, name, metadata["uid"])
            if found is None:
                raise
            revision = found.entry()
        revisions.append(revision)
        for old in beyond_limit(revisions, self.limit, keep=revision.name):
            await self._delete(namespace, old.name)
            revisions.remove(old)
        self._known[metadata["uid"]] = sorted(revisions, key=lambda r: r.number)
        return revision

    async def delete_all(self, namespace: str, instance_uid: str) -> None:
        """Deletes the instance's revisions (the garbage collector would, through their owner
        reference; this does not wait for it, nor need it)."""
        for revision in await self.history(namespace, instance_uid, fresh=True):
            await self._delete(namespace, revision.name)
        self.forget(instance_uid)

    async def _delete(self, namespace: str, name: str) -> None:
        await self.client.delete(CONTROLLER_REVISIONS, name, namespace)
        logger.debug("revision deleted", namespace=namespace, revision=name)
