"""Proves the local control plane is a real one: server-side apply with field ownership,
controllers that roll out Deployments onto a kwok node, garbage collection, apiserver restart
and etcd compaction."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException

from pequod.controlplane import ControlPlane

pytestmark = pytest.mark.cluster


async def eventually(
    probe: Callable[[], Awaitable[bool]], *, within: float = 60.0, interval: float = 0.5
) -> None:
    """Waits until ``probe`` holds; fails the test after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not await probe():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not met within {within} s: {probe.__name__}")
        await asyncio.sleep(interval)


def config_map(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


async def server_side_apply(
    api: client.ApiClient,
    collection: str,
    body: dict[str, Any],
    manager: str,
    *,
    force: bool = False,
) -> dict[str, Any]:
    """PATCH ``collection/name`` with application/apply-patch+yaml (`kubectl apply --server-side`).

    ``collection`` is the URL of the resource collection, e.g. ``/api/v1/namespaces/x/configmaps``.
    """
    response = await api.call_api(
        f"{collection}/{body['metadata']['name']}",
        "PATCH",
        query_params=[("fieldManager", manager), ("force", "true" if force else "false")],
        header_params={
            "Content-Type": "application/apply-patch+yaml",
            "Accept": "application/json",
        },
        body=body,
        auth_settings=["BearerToken"],
        _return_http_data_only=True,
        _preload_content=False,
    )
    content = await response.read()
    if response.status >= 400:
        # Without preloading, the client leaves error statuses to the caller.
        error = ApiException(status=response.status, reason=response.reason)
        error.body = content
        raise error
    result: dict[str, Any] = json.loads(content)
    return result


async def test_server_side_apply_tracks_owners_and_detects_conflicts(
    api_client: client.ApiClient, namespace: str
) -> None:
    configmaps = f"/api/v1/namespaces/{namespace}/configmaps"
    blue, red = config_map("settings", {"color": "blue"}), config_map("settings", {"color": "red"})

    applied = await server_side_apply(api_client, configmaps, blue, "pequod-test-a")
    managers = [entry["manager"] for entry in applied["metadata"]["managedFields"]]
    assert managers == ["pequod-test-a"]

    with pytest.raises(ApiException) as conflict:
        await server_side_apply(api_client, configmaps, red, "pequod-test-b")
    assert conflict.value.status == 409
    message = json.loads(conflict.value.body or b"{}")["message"]
    assert "pequod-test-a" in message
    assert ".data.color" in message

    forced = await server_side_apply(api_client, configmaps, red, "pequod-test-b", force=True)
    assert forced["data"] == {"color": "red"}


@pytest.mark.workloads
async def test_deployment_becomes_available_and_is_garbage_collected(
    workload_control_plane: ControlPlane, api_client: client.ApiClient, namespace: str
) -> None:
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    labels = {"app": "web"}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }
    await server_side_apply(
        api_client, f"/apis/apps/v1/namespaces/{namespace}/deployments", deployment, "pequod-test"
    )

    async def deployment_available() -> bool:
        live = await apps.read_namespaced_deployment("web", namespace)
        conditions = live.status.conditions or []
        available = any(c.type == "Available" and c.status == "True" for c in conditions)
        return available and live.status.ready_replicas == 2

    await eventually(deployment_available, within=90)
    pods = await core.list_namespaced_pod(namespace, label_selector="app=web")
    assert len(pods.items) == 2
    assert all(pod.status.phase == "Running" for pod in pods.items)
    assert all(pod.spec.node_name == "kwok-node-0" for pod in pods.items)

    await apps.delete_namespaced_deployment("web", namespace, propagation_policy="Background")

    async def dependents_collected() -> bool:
        replica_sets = await apps.list_namespaced_replica_set(namespace)
        remaining_pods = await core.list_namespaced_pod(namespace)
        return not replica_sets.items and not remaining_pods.items

    await eventually(dependents_collected, within=90)


async def first_watch_status(core: client.CoreV1Api, namespace: str, resource_version: str) -> int:
    """The HTTP status a watch from ``resource_version`` ends with: 200, or the error's code.

    Depending on the client version, an expired revision arrives as an ApiException or as an
    ERROR event carrying a Status object.
    """
    stream = watch.Watch()
    try:
        async with stream.stream(
            core.list_namespaced_config_map,
            namespace,
            resource_version=resource_version,
            timeout_seconds=5,
        ) as events:
            async for event in events:
                if event["type"] == "ERROR":
                    code: int = event["raw_object"]["code"]
                    return code
    except ApiException as error:
        status: int = error.status
        return status
    return 200


async def test_restart_and_compaction_keep_data_and_expire_old_watches(
    control_plane: ControlPlane, api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    configmaps = f"/api/v1/namespaces/{namespace}/configmaps"
    listed = await core.list_namespaced_config_map(namespace)
    old_version = listed.metadata.resource_version
    for index in range(3):
        body = config_map(f"cm-{index}", {"k": "v"})
        await server_side_apply(api_client, configmaps, body, "pequod-test")

    # Compaction drops the history in etcd; the restart drops the API server's watch cache,
    # which could otherwise still serve the old revision.
    compacted = await asyncio.to_thread(control_plane.compact_etcd)
    assert compacted > int(old_version)
    await asyncio.to_thread(control_plane.restart_apiserver)

    kept = await core.read_namespaced_config_map("cm-2", namespace)
    assert kept.data == {"k": "v"}
    assert await first_watch_status(core, namespace, old_version) == 410
