"""An inventory entry names its object by API group, kind, namespace and name: two kinds of one
name in different API groups (a ``Widget`` of ``a.example.com`` and one of ``b.example.com``,
same namespace and name) are two objects to the prune, the merge of inventories and the
ordered deletion. With a fake cluster that keeps objects by their full identity."""

from __future__ import annotations

from typing import Any, cast

from pequod.api.names import INSTANCE_UID_LABEL, NODE_ID_ANNOTATION
from pequod.api.resource_graph import InventoryEntry, ResourceGraph, merged
from pequod.backoff import Backoff, FailureCounts
from pequod.executor.apply import GraphExecutor
from pequod.executor.prune import Pruner
from pequod.kube.client import KubeClient
from pequod.kube.discovery import Discovery
from pequod.kube.resources import ResourceType, split_api_version

INSTANCE_UID = "instance-uid"
ObjectId = tuple[str, str, str | None, str]


class FakeCluster:
    """Namespaced kinds of any group, objects kept by (group, kind, namespace, name)."""

    def __init__(self) -> None:
        self.objects: dict[ObjectId, dict[str, Any]] = {}
        self.deleted: list[ObjectId] = []

    @staticmethod
    def _id(rt: ResourceType, namespace: str | None, name: str) -> ObjectId:
        return (rt.group, rt.kind, namespace, name)

    async def resource_type(self, api_version: str, kind: str) -> ResourceType:
        group, version = split_api_version(api_version)
        return ResourceType(group, version, kind, kind.lower() + "s", True)

    async def apply(self, rt: ResourceType, obj: dict[str, Any], **_: Any) -> dict[str, Any]:
        metadata = obj["metadata"]
        stored = {**obj, "metadata": {**metadata, "uid": f"uid-{rt.group}-{metadata['name']}"}}
        self.objects[self._id(rt, metadata.get("namespace"), metadata["name"])] = stored
        return stored

    async def get(
        self, rt: ResourceType, name: str, namespace: str | None = None, **_: Any
    ) -> dict[str, Any] | None:
        return self.objects.get(self._id(rt, namespace, name))

    async def list(self, rt: ResourceType, namespace: str | None = None, **_: Any) -> Any:
        return {"items": []}

    async def delete(
        self, rt: ResourceType, name: str, namespace: str | None = None, **_: Any
    ) -> None:
        key = self._id(rt, namespace, name)
        self.objects.pop(key, None)
        self.deleted.append(key)


class FakeLive:
    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster

    async def get(
        self, rt: ResourceType, namespace: str | None, name: str, *, cached_read: bool = False
    ) -> dict[str, Any] | None:
        return await self.cluster.get(rt, name, namespace)

    def watch(self, rt: ResourceType) -> None:
        return None

    def written(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        return None


def widget(group: str) -> dict[str, Any]:
    """A Widget as a render leaves it: its namespace set."""
    return {
        "apiVersion": f"{group}/v1",
        "kind": "Widget",
        "metadata": {"name": "x", "namespace": "ns"},
    }


def entry(group: str, node_id: str) -> InventoryEntry:
    return InventoryEntry(
        api_version=f"{group}/v1",
        kind="Widget",
        namespace="ns",
        name="x",
        uid=f"uid-{group}-x",
        node_id=node_id,
    )


def graph(nodes: list[str], inventory: list[InventoryEntry], dry_run: bool = False) -> Any:
    """A graph whose nodes are Widgets of the groups ``nodes`` names (node id: the group's
    first label), with ``inventory`` from a previous pass over this generation."""
    return ResourceGraph.parse(
        {
            "metadata": {"name": "g", "namespace": "ns", "uid": "graph-uid", "generation": 2},
            "spec": {
                "sourceRef": {
                    "apiVersion": "example.com/v1",
                    "kind": "App",
                    "name": "app",
                    "uid": INSTANCE_UID,
                },
                "nodes": [{"id": g.split(".")[0], "object": widget(g)} for g in nodes],
                "dryRun": dry_run,
            },
            "status": {
                "observedGeneration": 2,
                "inventory": [e.to_dict() for e in inventory],
            },
        }
    )


def seeded(cluster: FakeCluster, *groups: str) -> None:
    """The Widgets a previous pass applied, marked as the instance's."""
    for group in groups:
        cluster.objects[(group, "Widget", "ns", "x")] = {
            **widget(group),
            "metadata": {
                "name": "x",
                "namespace": "ns",
                "uid": f"uid-{group}-x",
                "labels": {INSTANCE_UID_LABEL: INSTANCE_UID},
                "annotations": {NODE_ID_ANNOTATION: group.split(".")[0]},
            },
        }


def executor(cluster: FakeCluster) -> GraphExecutor:
    return GraphExecutor(
        cast(KubeClient, cluster),
        cast(Discovery, cluster),
        FakeLive(cluster),
        apply_concurrency=8,
        ready_timeout=600.0,
        backoff=FailureCounts(Backoff()),
    )


def test_entries_of_one_kind_name_in_two_groups_have_two_keys() -> None:
    a, b = entry("a.example.com", "a"), entry("b.example.com", "b")
    assert a.key != b.key
    assert merged([a], [b]) == [a, b]


async def test_prune_deletes_the_widget_of_the_group_that_left_the_graph() -> None:
    cluster = FakeCluster()
    seeded(cluster, "a.example.com", "b.example.com")
    before = [entry("a.example.com", "a"), entry("b.example.com", "b")]
    result = await executor(cluster).execute(graph(["a.example.com"], before))
    assert result.phase == "Ready"
    assert result.pruned == ["Widget/x"]
    assert cluster.deleted == [("b.example.com", "Widget", "ns", "x")]
    assert ("a.example.com", "Widget", "ns", "x") in cluster.objects
    assert [e.api_version for e in result.inventory] == ["a.example.com/v1"]


def test_a_dry_run_would_prune_the_widget_of_the_group_that_left() -> None:
    before = [entry("a.example.com", "a"), entry("b.example.com", "b")]
    prunable = Pruner.prunable(graph(["a.example.com"], before), [before[0]])
    assert prunable == [before[1]]


async def test_a_dry_run_of_an_applied_graph_would_prune_only_what_left_it() -> None:
    cluster = FakeCluster()
    await executor(cluster).execute(graph(["a.example.com", "b.example.com"], []))
    before = [entry("a.example.com", "a"), entry("b.example.com", "b")]
    unchanged = await executor(cluster).execute(
        graph(["a.example.com", "b.example.com"], before, dry_run=True)
    )
    assert unchanged.pruned == []
    one_left = await executor(cluster).execute(graph(["a.example.com"], before, dry_run=True))
    assert one_left.pruned == ["Widget/x"]
    assert cluster.deleted == []


async def test_both_widgets_of_one_name_are_applied_and_listed() -> None:
    cluster = FakeCluster()
    result = await executor(cluster).execute(graph(["a.example.com", "b.example.com"], []))
    assert result.phase == "Ready"
    assert result.changes.created == ["a", "b"]
    assert [e.api_version for e in result.inventory] == ["a.example.com/v1", "b.example.com/v1"]
    assert result.pruned == []


async def test_deletion_deletes_both_widgets_of_one_name() -> None:
    cluster = FakeCluster()
    seeded(cluster, "a.example.com", "b.example.com")
    before = [entry("a.example.com", "a"), entry("b.example.com", "b")]
    run = executor(cluster)
    # One layer a call: the Widget of no node of the graph first, then the node's.
    outcomes = [await run.delete(graph(["a.example.com"], before)) for _ in range(3)]
    assert outcomes == [
        (False, "waiting for Widget/x to be deleted"),
        (False, "waiting for Widget/x to be deleted"),
        (True, ""),
    ]
    assert sorted(cluster.deleted) == [
        ("a.example.com", "Widget", "ns", "x"),
        ("b.example.com", "Widget", "ns", "x"),
    ]
