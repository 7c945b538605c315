"""Serving a kind: a burst of instances created (or deleted) at once costs a write or two of
the Transform's ``status.instances`` (the count alone), not a write or a reconcile per instance;
a new module for a kind already served brings every instance back; deregistering stops the
kind's informer."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, cast

from pequod.api.names import INSTANCE_FINALIZER
from pequod.api.resources import TRANSFORMS
from pequod.kube.client import KubeClient
from pequod.kube.controller import DONE, Controller, Result
from pequod.kube.informer import Informer, InformerEvent
from pequod.kube.manager import Manager
from pequod.kube.resources import ResourceType
from pequod.kube.writes import ObjectWriter
from pequod.module.source import ModuleSource
from pequod.operator.instance_controller import InstanceReconciler
from pequod.operator.serving import InstanceKey, ServedKind, ServedKinds, instance_event_matters

KIND = ResourceType("example.io", "v1", "Widget", "widgets", True)


class FakeManager:
    def __init__(self) -> None:
        self.informers: dict[ResourceType, Informer] = {}
        self.removed: list[ResourceType] = []

    def informer(self, resource_type: ResourceType, **_: Any) -> Informer:
        if resource_type not in self.informers:
            self.informers[resource_type] = Informer(cast(KubeClient, None), resource_type)
        return self.informers[resource_type]

    async def remove_informer(self, resource_type: ResourceType, **_: Any) -> None:
        self.removed.append(resource_type)


class FakeWriter:
    def __init__(self) -> None:
        self.writes: list[tuple[str, dict[str, Any]]] = []
        self.failures: list[BaseException] = []
        """Raised, in order, by the next writes (the API server down)."""

    async def write_status(
        self, rt: ResourceType, obj: dict[str, Any], status: dict[str, Any]
    ) -> bool:
        if self.failures:
            raise self.failures.pop(0)
        self.writes.append((obj["metadata"]["name"], status))
        obj.setdefault("status", {}).update(status)  # as the cache sees the write come back
        return True


async def _nothing(_: InstanceKey) -> Result:
    return DONE


def _kind(digest: str = "sha256:a") -> ServedKind:
    return ServedKind(
        transform="widgets",
        resource_type=KIND,
        module=ModuleSource(Path("/nowhere"), "embedded:widget", digest),
        policies=(),
        allowed_namespaces=(),
        allow_cluster_scoped=False,
        instance_platform_refs=(),
    )


def _instance(name: str) -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": name, "generation": 1}}


def _served_kinds(
    interval: float = 0.05,
) -> tuple[ServedKinds, FakeManager, FakeWriter, Controller[InstanceKey]]:
    manager, writer = FakeManager(), FakeWriter()
    kinds = ServedKinds(
        cast(Manager, manager), cast(ObjectWriter, writer), count_write_interval=interval
    )
    controller: Controller[InstanceKey] = Controller("instance", _nothing)
    kinds.deliver_instances_to(controller)
    transforms = manager.informer(TRANSFORMS)
    versions = [VERSION_A]
    transforms.store["widgets"] = {
        "metadata": {"name": "widgets"},
        "status": {"instances": 0, "moduleVersions": versions},
    }
    return kinds, manager, writer, controller


VERSION_A = {
    "ref": "embedded:widget",
    "digest": "sha256:a",
    "firstServedAt": "2026-12-01T00:00:00Z",
    "instances": 0,
}
"""The module version the Transform's status lists (its instances have no status yet, so none
is counted on it)."""


def counts(writer: FakeWriter) -> list[tuple[str, dict[str, Any]]]:
    """The count writes, each with the module versions it wrote (unchanged here)."""
    for _, written in writer.writes:
        assert written["moduleVersions"] == [VERSION_A]
    return [(name, {"instances": written["instances"]}) for name, written in writer.writes]


async def test_a_burst_of_instances_is_a_count_write_or_two() -> None:
    kinds, manager, writer, _ = _served_kinds()
    served = kinds.register(_kind())
    informer = manager.informers[KIND]
    informer.synced.set()
    for number in range(1000):
        obj = _instance(f"w{number}")
        informer.store[f"default/w{number}"] = obj
        informer._dispatch(InformerEvent("ADDED", obj))
    assert served.instance_count == 1000
    assert served.count_write is not None
    await served.count_write
    # The first change at once (the events of this burst all came before it ran); the store
    # is what the write reads, so there is nothing left for a second one.
    assert counts(writer) == [("widgets", {"instances": 1000})]


async def test_changes_during_the_interval_gather_into_one_write() -> None:
    kinds, manager, writer, _ = _served_kinds(interval=1.0)
    served = kinds.register(_kind())
    informer = manager.informers[KIND]
    informer.synced.set()
    for number in range(3):
        obj = _instance(f"w{number}")
        informer.store[f"default/w{number}"] = obj
        informer._dispatch(InformerEvent("ADDED", obj))
        await asyncio.sleep(0)  # the first write runs at once; the next two wait the interval
    assert served.count_write is not None
    await served.count_write
    assert counts(writer) == [("widgets", {"instances": 1}), ("widgets", {"instances": 3})]


async def test_a_count_write_that_cannot_connect_is_tried_again() -> None:
    kinds, manager, writer, _ = _served_kinds(interval=0.01)
    writer.failures = [ConnectionRefusedError("the API server is restarting")]
    served = kinds.register(_kind())
    informer = manager.informers[KIND]
    informer.synced.set()
    obj = _instance("w")
    informer.store["default/w"] = obj
    informer._dispatch(InformerEvent("ADDED", obj))
    assert served.count_write is not None
    await served.count_write  # raises if the error escaped the task
    assert counts(writer) == [("widgets", {"instances": 1})]


async def test_an_unchanged_count_is_not_written() -> None:
    kinds, manager, writer, _ = _served_kinds()
    kinds.register(_kind())
    informer = manager.informers[KIND]
    informer.synced.set()
    obj = _instance("w")
    informer.store["default/w"] = obj
    informer._dispatch(InformerEvent("ADDED", obj))
    del informer.store["default/w"]
    informer._dispatch(InformerEvent("DELETED", obj))
    task = kinds.served["widgets"].count_write
    assert task is not None
    await task
    assert writer.writes == []


async def test_a_new_module_brings_every_instance_back() -> None:
    kinds, manager, _, controller = _served_kinds()
    kinds.register(_kind())
    informer = manager.informers[KIND]
    for name in ("a", "b"):
        informer.store[f"default/{name}"] = _instance(name)
    kinds.register(_kind())
    assert len(controller.queue) == 0
    kinds.register(_kind("sha256:b"))
    assert len(controller.queue) == 2


async def test_deregistering_stops_the_informer() -> None:
    kinds, manager, _, _ = _served_kinds()
    kinds.register(_kind())
    await kinds.deregister("widgets")
    assert kinds.get("widgets") is None
    assert manager.removed == [KIND]


def _graph(status: dict[str, Any] | None = None, spec: str = "x") -> dict[str, Any]:
    labels = {"platform.pequod.io/transform": "widgets", "platform.pequod.io/instance-name": "w"}
    graph: dict[str, Any] = {
        "metadata": {"namespace": "default", "name": "widget-w", "labels": labels},
        "spec": {"nodes": spec},
    }
    if status is not None:
        graph["status"] = status
    return graph


async def test_graph_events_that_cannot_change_the_instance_do_not_enqueue_it() -> None:
    kinds, manager, writer, _ = _served_kinds()
    writer.events = None  # type: ignore[attr-defined]
    instances = InstanceReconciler(
        cast(KubeClient, None),
        cast(Manager, manager),
        kinds,
        cast(Any, None),
        cast(ObjectWriter, writer),
        concurrency=1,
    )
    matters = instances._graph_event_matters
    reported = _graph({"phase": "Ready"})
    # The echo of the instance's own write; graphs listed before their kind is served.
    assert not matters(InformerEvent("ADDED", _graph()))
    assert not matters(InformerEvent("ADDED", reported))
    assert not matters(InformerEvent("RESYNC", reported))
    assert not matters(InformerEvent("MODIFIED", reported, reported))
    assert matters(InformerEvent("MODIFIED", reported, _graph()))
    assert matters(InformerEvent("MODIFIED", _graph(spec="y"), _graph()))
    assert matters(InformerEvent("DELETED", reported))
    kinds.register(_kind())
    # Relisted after a gap in the watch, with a status the instance has not seen.
    assert matters(InformerEvent("ADDED", reported))
    assert not matters(InformerEvent("ADDED", _graph()))


def _with_finalizers(finalizers: list[str], generation: int = 1) -> dict[str, object]:
    return {
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "generation": generation,
            "finalizers": finalizers,
        }
    }


def test_the_echo_of_the_instance_finalizer_does_not_enqueue_the_with_finalizers() -> None:
    added = InformerEvent("MODIFIED", _with_finalizers([INSTANCE_FINALIZER]), _with_finalizers([]))
    assert not instance_event_matters(added)
    removed = InformerEvent(
        "MODIFIED", _with_finalizers([]), _with_finalizers([INSTANCE_FINALIZER])
    )
    assert instance_event_matters(removed)
    other = InformerEvent("MODIFIED", _with_finalizers(["example.com/other"]), _with_finalizers([]))
    assert instance_event_matters(other)
    with_spec = InformerEvent(
        "MODIFIED", _with_finalizers([INSTANCE_FINALIZER], generation=2), _with_finalizers([])
    )
    assert instance_event_matters(with_spec)
    assert instance_event_matters(InformerEvent("ADDED", _with_finalizers([INSTANCE_FINALIZER])))
