"""The kinds the operator serves right now, one per ready Transform, and everything that serving
a kind takes, registered and deregistered in one place: the kind's informer, the watch that
sends its instances to the instance controller, and the Transform's ``status.instances``
(counted here from the informer and written on its own, a few writes for many instances)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from pequod.api.names import INSTANCE_FINALIZER
from pequod.api.resources import TRANSFORMS
from pequod.api.rollout import PROGRESS_WRITE_SECONDS, RolloutState
from pequod.clock import timestamp
from pequod.delivery.reference import ModuleReference
from pequod.graph.validate import NamespacePolicy
from pequod.kube.client import API_OR_TRANSPORT_ERRORS, ApiError
from pequod.kube.controller import Controller, spec_or_metadata_changed
from pequod.kube.informer import Informer, InformerEvent
from pequod.kube.manager import Manager
from pequod.kube.resources import ResourceType
from pequod.kube.writes import ObjectWriter
from pequod.module.source import ModuleSource

logger = structlog.get_logger(__name__)

MODULE_VERSIONS_KEPT = 10
COUNT_WRITE_INTERVAL_SECONDS = 1.0
"""The least time between two writes of a Transform's instance count. The first change is
written at once; the changes that come during the interval after a write gather into one
write: a burst of creations (or deletions) costs a write a second, not one per instance."""


@dataclass(frozen=True)
class InstanceKey:
    transform: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.transform}:{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ServedKind:
    """What a Transform serves: its kind, and what its instances are rendered with."""

    transform: str
    resource_type: ResourceType
    module: ModuleSource
    policies: tuple[ModuleSource, ...]
    allowed_namespaces: tuple[str, ...]
    allow_cluster_scoped: bool
    instance_platform_refs: tuple[ModuleReference, ...]
    module_name: str | None = None
    module_version: str | None = None
    adoption_strategies: tuple[str, ...] = ()
    """The adoption strategies its instances may ask for (``spec.adoption``)."""
    rollout: RolloutState | None = None
    """The rollout of the last module change, if it was rolled out in waves."""
    previous_module: ModuleSource | None = None
    """The module the instances a rollout has not moved render with."""

    def module_for(self, namespace: str, name: str) -> ModuleSource:
        """The module an instance not pinned by ``spec.platformRef`` renders with: the
        Transform's, unless a rollout has not moved it yet (or rolled it back)."""
        if (
            self.rollout is None
            or self.previous_module is None
            or self.rollout.renders_target(f"{namespace}/{name}")
        ):
            return self.module
        return self.previous_module

    def rollout_inputs(self) -> tuple[object, ...]:
        """What decides which module version each instance renders with."""
        return (
            self.previous_module.digest if self.previous_module else None,
            (self.rollout.phase, self.rollout.moved) if self.rollout else None,
        )

    def namespace_policy(self, namespace: str) -> NamespacePolicy:
        return NamespacePolicy(namespace, self.allowed_namespaces, self.allow_cluster_scoped)

    def render_inputs(self) -> tuple[object, ...]:
        """What every instance's render depends on: when it changes, every instance renders
        again. (Which module version each renders with is :meth:`module_for`.)"""
        return (
            self.module.digest,
            tuple(p.digest for p in self.policies),
            self.allowed_namespaces,
            self.allow_cluster_scoped,
            self.instance_platform_refs,
            self.adoption_strategies,
        )


@dataclass
class ServedApi:
    """A served kind with its informer (the instances); ``kind`` changes in place when the
    Transform serves the same kind with a new module."""

    kind: ServedKind
    informer: Informer
    count_write: asyncio.Task[None] | None = field(default=None, repr=False)
    count_changed: bool = field(default=False, repr=False)

    @property
    def transform(self) -> str:
        return self.kind.transform

    @property
    def resource_type(self) -> ResourceType:
        return self.kind.resource_type

    @property
    def module(self) -> ModuleSource:
        return self.kind.module

    @property
    def instance_count(self) -> int | None:
        """How many instances there are; None until the informer has listed."""
        return len(self.informer.store) if self.informer.synced.is_set() else None

    def instance_keys(self) -> list[InstanceKey]:
        return [
            InstanceKey(self.transform, obj["metadata"]["namespace"], obj["metadata"]["name"])
            for obj in self.informer.list()
        ]


class ServedKinds:
    """Registers and deregisters served kinds (kro's register/deregister of a dynamic
    controller). The instance controller receives the instances' events through
    :meth:`deliver_instances_to`."""

    def __init__(
        self,
        manager: Manager,
        writer: ObjectWriter,
        *,
        count_write_interval: float = COUNT_WRITE_INTERVAL_SECONDS,
    ) -> None:
        self.manager = manager
        self.writer = writer
        self.count_write_interval = count_write_interval
        self.transforms: Informer = manager.informer(TRANSFORMS)
        self.served: dict[str, ServedApi] = {}
        self._instances: Controller[InstanceKey] | None = None
        self._rollout_progress: Callable[[str], None] | None = None

    def deliver_instances_to(self, controller: Controller[InstanceKey]) -> None:
        self._instances = controller

    def report_rollout_progress_to(self, notify: Callable[[str], None]) -> None:
        """``notify(transform)`` when an instance of a kind in a rollout changes (its status
        says whether the rollout can go on)."""
        self._rollout_progress = notify

    def get(self, transform: str) -> ServedApi | None:
        return self.served.get(transform)

    def register(self, kind: ServedKind) -> ServedApi:
        """Serves ``kind`` (again): a new kind gets its informer and instance watch; new render
        inputs for a kind already served bring each of its instances back."""
        name = kind.transform
        served = self.served.get(name)
        if served is None or served.resource_type != kind.resource_type:
            served = self.served[name] = ServedApi(kind, self._watch(name, kind.resource_type))
            return served
        previous, served.kind = served.kind, kind
        assert self._instances is not None
        if previous.render_inputs() != kind.render_inputs():
            for key in served.instance_keys():
                self._instances.enqueue(key)
        elif previous.rollout_inputs() != kind.rollout_inputs():
            # A wave moved (or a rollback moved back) some instances: only theirs render again,
            # not the whole fleet at every wave.
            for key in served.instance_keys():
                before = previous.module_for(key.namespace, key.name)
                if before.digest != kind.module_for(key.namespace, key.name).digest:
                    self._instances.enqueue(key)
        return served

    async def deregister(self, transform: str) -> None:
        """Stops serving a Transform's kind: its informer stops, its count is no longer
        written."""
        served = self.served.pop(transform, None)
        if served is None:
            return
        if served.count_write is not None:
            served.count_write.cancel()
        await self.manager.remove_informer(served.resource_type)
        logger.info("stopped watching", transform=transform, resource=str(served.resource_type))

    def _watch(self, transform: str, resource_type: ResourceType) -> Informer:
        assert self._instances is not None, "deliver_instances_to first"
        informer = self.manager.informer(resource_type)

        def count_changed(event: InformerEvent) -> None:
            if event.type in ("ADDED", "DELETED") or _module_moved(event):
                self._write_count_soon(transform)

        informer.add_handler(count_changed, replay=False)

        def rollout_progress(event: InformerEvent) -> None:
            served = self.served.get(transform)
            if (
                served is None
                or served.kind.rollout is None
                or not served.kind.rollout.active
                or self._rollout_progress is None
            ):
                return
            unchanged = event.old is not None and event.object.get("status") == event.old.get(
                "status"
            )
            if event.type == "MODIFIED" and unchanged:
                return
            self._rollout_progress(transform)

        informer.add_handler(rollout_progress, replay=False)
        self._instances.watch(
            informer,
            lambda event: [
                InstanceKey(
                    transform,
                    event.object["metadata"]["namespace"],
                    event.object["metadata"]["name"],
                )
            ],
            predicate=instance_event_matters,
        )
        logger.info("watching a new kind", transform=transform, resource=str(resource_type))
        return informer

    def _write_count_soon(self, transform: str) -> None:
        served = self.served.get(transform)
        if served is None:
            return
        served.count_changed = True
        if served.count_write is None:
            served.count_write = asyncio.create_task(
                self._write_counts(served), name=f"instance count {transform}"
            )

    async def _write_counts(self, served: ServedApi) -> None:
        """Writes the count while it keeps changing, at most once an interval (during a
        rollout in waves, as often as the rollout's progress is written)."""
        try:
            while served.count_changed:
                served.count_changed = False
                await self._write_count(served)
                rollout = served.kind.rollout
                await asyncio.sleep(
                    max(self.count_write_interval, PROGRESS_WRITE_SECONDS)
                    if rollout is not None and rollout.active
                    else self.count_write_interval
                )
        finally:
            served.count_write = None

    async def _write_count(self, served: ServedApi) -> None:
        count = served.instance_count
        transform = self.transforms.get(served.transform)
        if count is None or transform is None or transform["metadata"].get("deletionTimestamp"):
            return  # the deletion's reconcile writes the count it waits for
        status = transform.get("status") or {}
        desired = {
            "instances": count,
            "moduleVersions": module_versions(status, served.module, served),
        }
        if all(status.get(k) == v for k, v in desired.items()):
            return
        try:
            # Only these fields: a merge patch of them leaves the rest of the status as the
            # Transform's reconcile last wrote it, whatever the cache has seen of that.
            await self.writer.write_status(TRANSFORMS, transform, desired)
        except API_OR_TRANSPORT_ERRORS as error:
            # This task is nobody's to await: an error must end here, and a transient one
            # (the API server restarting) tries again after the interval.
            logger.warning(
                "instance count not written", transform=served.transform, error=str(error)
            )
            if not isinstance(error, ApiError) or error.transient:
                served.count_changed = True


def _module_moved(event: InformerEvent) -> bool:
    """An instance's status names another module version than before."""
    if event.type != "MODIFIED" or event.old is None:
        return False

    def digest(obj: dict[str, Any]) -> str:
        return str(((obj.get("status") or {}).get("platformRefResolved") or {}).get("digest"))

    return digest(event.object) != digest(event.old)


def instance_event_matters(event: InformerEvent) -> bool:
    """Whether an instance's event needs a reconcile: not its own status writes
    (:func:`spec_or_metadata_changed`), and not the echo of the instance controller adding its
    finalizer (the reconcile that added it went on to render in the same pass)."""
    if not spec_or_metadata_changed(event):
        return False
    if event.type != "MODIFIED" or event.old is None:
        return True
    new, old = event.object["metadata"], event.old["metadata"]
    added = [f for f in new.get("finalizers") or [] if f not in (old.get("finalizers") or [])]
    unchanged = all(
        new.get(field) == old.get(field)
        for field in ("generation", "labels", "annotations", "deletionTimestamp", "ownerReferences")
    )
    return not (unchanged and added == [INSTANCE_FINALIZER])


def module_versions(
    status: dict[str, Any], module: ModuleSource, served: ServedApi | None
) -> list[dict[str, Any]]:
    """The module versions the instances are on (by their statuses), the one served first,
    each with when it was first served and how many instances are on it."""
    if served is None or served.instance_count is None:
        # Not every instance is known yet: the counts stored stand (the informer's list brings
        # a count write), with the version served now first.
        stored = [v for v in status.get("moduleVersions") or () if v.get("digest")]
        current = next((v for v in stored if v["digest"] == module.digest), None)
        first = current or {
            "ref": module.reference,
            "digest": module.digest,
            "firstServedAt": timestamp(),
            "instances": 0,
        }
        others = [v for v in stored if v["digest"] != module.digest]
        return [first, *others][:MODULE_VERSIONS_KEPT]
    counts: Counter[str] = Counter()
    refs: dict[str, str] = {}
    for instance in served.informer.list():
        resolved = (instance.get("status") or {}).get("platformRefResolved") or {}
        if resolved.get("digest"):
            counts[resolved["digest"]] += 1
            refs.setdefault(resolved["digest"], resolved.get("ref", ""))
    known = {v.get("digest"): v for v in status.get("moduleVersions") or ()}
    now = timestamp()
    versions = []
    for digest in [module.digest, *(d for d in counts if d != module.digest)]:
        before = known.get(digest) or {}
        versions.append(
            {
                "ref": module.reference if digest == module.digest else refs[digest],
                "digest": digest,
                "firstServedAt": before.get("firstServedAt") or now,
                "instances": counts.get(digest, 0),
            }
        )
    current, others = versions[0], versions[1:]
    others.sort(key=lambda v: v["firstServedAt"], reverse=True)
    return [current, *others][:MODULE_VERSIONS_KEPT]
