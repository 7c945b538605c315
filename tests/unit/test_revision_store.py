"""The revision store lists an instance's revisions once and keeps the list by its own writes:
numbers stay consecutive, the limit holds, and a failed write makes the next use list again.
A fake client stands in for the API server (the integration tests use a real one)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pequod.api.resource_graph import (
    RenderMetadata,
    ResourceGraph,
    ResourceGraphSpec,
    ResourceGraphStatus,
    SourceRef,
)
from pequod.api.revisions import FAILED, READY
from pequod.kube.client import ApiError
from pequod.operator.revisions import RevisionStore

INSTANCE = {
    "apiVersion": "example.com/v1",
    "kind": "WebService",
    "metadata": {"name": "web", "namespace": "ns", "uid": "uid-1"},
}


class RevisionsServer:
    """ControllerRevisions by name, with a count of the lists."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.lists = 0
        self.fail_next_create = False

    async def list(self, rt: Any, namespace: str, *, label_selector: str) -> dict[str, Any]:
        self.lists += 1
        key, _, value = label_selector.partition("=")
        return {
            "items": [o for o in self.objects.values() if o["metadata"]["labels"].get(key) == value]
        }

    async def create(self, rt: Any, obj: dict[str, Any]) -> dict[str, Any]:
        if self.fail_next_create:
            self.fail_next_create = False
            raise ApiError(500, "InternalError", "etcd is away")
        name = obj["metadata"]["name"]
        if name in self.objects:
            raise ApiError(409, "AlreadyExists", f"{name} exists")
        self.objects[name] = obj
        return obj

    async def get(self, rt: Any, name: str, namespace: str) -> dict[str, Any] | None:
        return self.objects.get(name)

    async def delete(self, rt: Any, name: str, namespace: str) -> None:
        self.objects.pop(name, None)


def graph(edition: int) -> ResourceGraph:
    spec = ResourceGraphSpec(
        SourceRef("example.com/v1", "WebService", "web", "uid-1"),
        RenderMetadata("m", "1", "embedded:m@1", f"sha256:{edition:02d}{'a' * 62}", "", "t"),
        (),
    )
    return ResourceGraph("ns", "webservice-web", "g", 1, spec, ResourceGraphStatus(), {})


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_an_instance_is_listed_once_and_numbered_by_the_store_s_own_writes() -> None:
    server = RevisionsServer()
    store = RevisionStore(server, limit=3)  # type: ignore[arg-type]

    async def scenario() -> list[int]:
        numbers = []
        for edition in (1, 2, 3, 4, 5):
            numbers.append((await store.record(INSTANCE, "t", graph(edition), "d", READY)).number)
        # The same graph again: the same revision, nothing written.
        again = await store.record(INSTANCE, "t", graph(5), "d", READY)
        assert again.number == 5
        return numbers

    assert run(scenario()) == [1, 2, 3, 4, 5]
    assert server.lists == 1
    assert sorted(o["revision"] for o in server.objects.values()) == [3, 4, 5]
    history = run(store.history("ns", "uid-1"))
    assert [r.number for r in history] == [3, 4, 5]
    assert server.lists == 1


def test_a_failed_revision_that_becomes_ready_keeps_its_number() -> None:
    server = RevisionsServer()
    store = RevisionStore(server)  # type: ignore[arg-type]
    run(store.record(INSTANCE, "t", graph(1), "d", READY))
    failed = run(store.record(INSTANCE, "t", graph(2), "d", FAILED))
    ready = run(store.record(INSTANCE, "t", graph(2), "d", READY))
    assert (failed.number, failed.outcome, ready.number, ready.outcome) == (2, FAILED, 2, READY)
    assert [r.number for r in run(store.history("ns", "uid-1"))] == [1, 2]


def test_a_failed_write_makes_the_next_use_list_again() -> None:
    server = RevisionsServer()
    store = RevisionStore(server)  # type: ignore[arg-type]
    run(store.record(INSTANCE, "t", graph(1), "d", READY))
    server.fail_next_create = True
    with pytest.raises(ApiError):
        run(store.record(INSTANCE, "t", graph(2), "d", READY))
    assert run(store.record(INSTANCE, "t", graph(2), "d", READY)).number == 2
    assert server.lists == 2


def test_deleting_an_instance_s_revisions_lists_what_the_cluster_has() -> None:
    server = RevisionsServer()
    store = RevisionStore(server)  # type: ignore[arg-type]
    run(store.record(INSTANCE, "t", graph(1), "d", READY))
    # Written by a process before this one: not known to this store until it lists.
    other = dict(next(iter(server.objects.values())))
    other["metadata"] = {**other["metadata"], "name": "webservice-web-0000000009"}
    server.objects["webservice-web-0000000009"] = other
    run(store.delete_all("ns", "uid-1"))
    assert server.objects == {}
    assert run(store.history("ns", "uid-1")) == []
