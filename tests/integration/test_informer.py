"""The informer against a real API server: it lists then watches, survives an API server
restart without losing an event, and after 410 Gone lists again and emits what it missed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from pequod.controlplane import ControlPlane
from pequod.kube.client import KubeClient
from pequod.kube.discovery import Discovery, UnknownKindError
from pequod.kube.informer import Informer, InformerEvent
from pequod.kube.resources import CONFIG_MAPS, NAMESPACES
from pequod.sandbox.kubectl import wait_established
from tests.operator_harness import Kubectl

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def uncached_plane() -> Iterator[ControlPlane]:
    """A control plane whose API server has no watch cache: watches read etcd directly, so a
    compacted resourceVersion is answered with 410 Gone."""
    plane = ControlPlane(watch_cache=False)
    try:
        plane.start()
    except Exception as error:
        pytest.fail(f"the control plane did not start: {error}", pytrace=False)
    yield plane
    plane.stop()


@contextlib.asynccontextmanager
async def client_for(plane: ControlPlane) -> AsyncIterator[KubeClient]:
    client = await KubeClient.from_kubeconfig(str(plane.kubeconfig))
    try:
        yield client
    finally:
        await client.close()


def config_map(name: str, namespace: str, value: str = "v") -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"k": value},
    }


async def until(predicate: Callable[[], bool], within: float = 30.0) -> None:
    """Polls the informer's store (which has no event to wait on) until ``predicate`` holds."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.1)


async def test_informer_relists_after_410_and_emits_what_it_missed(
    uncached_plane: ControlPlane,
) -> None:
    async with client_for(uncached_plane) as client:
        await client.create(NAMESPACES, {"metadata": {"name": "gone"}})
        for name in ("kept", "deleted", "changed"):
            await client.create(CONFIG_MAPS, config_map(name, "gone"))
        informer = Informer(client, CONFIG_MAPS, namespace="gone")
        events: list[InformerEvent] = []
        informer.add_handler(events.append)
        task = asyncio.create_task(informer.run())
        await asyncio.wait_for(informer.synced.wait(), 30)
        assert set(informer.store) == {"gone/kept", "gone/deleted", "gone/changed"}

        # Disconnect, change things, and compact the history away.
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        events.clear()
        await client.delete(CONFIG_MAPS, "deleted", "gone")
        await client.apply(
            CONFIG_MAPS, config_map("changed", "gone", "new"), field_manager="t", force=True
        )
        await client.create(CONFIG_MAPS, config_map("added", "gone"))
        await asyncio.to_thread(uncached_plane.compact_etcd)

        task = asyncio.create_task(informer.run(resume=True))
        try:
            await until(lambda: informer.relists >= 1 and "gone/added" in informer.store)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        seen = {(e.type, e.object["metadata"]["name"]) for e in events}
        assert ("DELETED", "deleted") in seen
        assert ("MODIFIED", "changed") in seen
        assert ("ADDED", "added") in seen
        assert ("MODIFIED", "kept") not in seen
        assert informer.store["gone/changed"]["data"] == {"k": "new"}


async def test_informer_keeps_every_event_across_an_api_server_restart(
    control_plane: ControlPlane, namespace: str
) -> None:
    async with client_for(control_plane) as client:
        informer = Informer(client, CONFIG_MAPS, namespace=namespace)
        events: list[InformerEvent] = []
        informer.add_handler(events.append)
        task = asyncio.create_task(informer.run())
        try:
            await asyncio.wait_for(informer.synced.wait(), 30)
            await client.create(CONFIG_MAPS, config_map("before", namespace))
            await until(lambda: f"{namespace}/before" in informer.store)
            await asyncio.to_thread(control_plane.restart_apiserver)
            await client.create(CONFIG_MAPS, config_map("after", namespace))
            await client.delete(CONFIG_MAPS, "before", namespace)
            await until(
                lambda: (
                    f"{namespace}/after" in informer.store
                    and f"{namespace}/before" not in informer.store
                ),
                within=60,
            )
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        names = [(e.type, e.object["metadata"]["name"]) for e in events]
        assert ("ADDED", "before") in names
        assert ("ADDED", "after") in names
        assert ("DELETED", "before") in names


async def test_discovery_finds_built_in_kinds_and_kinds_created_at_runtime(
    control_plane: ControlPlane, kubectl: Kubectl
) -> None:
    async with client_for(control_plane) as client:
        discovery = Discovery(client)
        config_maps = await discovery.resource_type("v1", "ConfigMap")
        assert (config_maps.plural, config_maps.namespaced) == ("configmaps", True)
        with pytest.raises(UnknownKindError):
            await discovery.resource_type("example.pequod.io/v1", "Widget")
        kubectl.apply(WIDGET_CRD)
        wait_established(kubectl.plane.kubeconfig, "widgets.example.pequod.io")
        widgets = await discovery.resource_type("example.pequod.io/v1", "Widget")
        assert (widgets.plural, widgets.namespaced) == ("widgets", False)
        kubectl.run("delete", "crd", "widgets.example.pequod.io")


WIDGET_CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.pequod.io}
spec:
  group: example.pequod.io
  scope: Cluster
  names: {kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
"""
