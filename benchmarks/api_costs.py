"""What each kind of request Pequod sends costs the API server and etcd.

    .venv/bin/python benchmarks/api_costs.py [--count 1000] [--concurrency 8]

On a local control plane of its own (etcd and kube-apiserver), sends ``--count`` requests of
each kind Pequod makes per instance, ``--concurrency`` at once, and prints the CPU
milliseconds per request that kube-apiserver and etcd spent on them. This is what turns a
count of requests per instance into a floor for the whole operator (docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pequod.api.names import FIELD_MANAGER
from pequod.controlplane import ControlPlane
from pequod.kube.client import KubeClient
from pequod.kube.resources import EVENTS, ResourceType
from pequod.toolchain.locate import find_binary

REPOSITORY = Path(__file__).resolve().parent.parent
NAMESPACE = "costs"
CONFIG_MAPS = ResourceType("", "v1", "ConfigMap", "configmaps", True)
DEPLOYMENTS = ResourceType("apps", "v1", "Deployment", "deployments", True)
GRAPHS = ResourceType("platform.pequod.io", "v1alpha1", "ResourceGraph", "resourcegraphs", True)


def config_map(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": name}},
        "data": {"image": "ghcr.io/acme/app:1.0"},
    }


def deployment(name: str) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/app:1.0"}]},
            },
        },
    }


def graph(name: str) -> dict[str, Any]:
    """A ResourceGraph of the size the scale benchmark writes (three nodes)."""
    nodes = [
        {"id": "config", "object": config_map(name), "readyWhen": [{"type": "Exists"}]},
        {
            "id": "deployment",
            "dependsOn": ["config"],
            "object": deployment(name),
            "readyWhen": [{"type": "Exists"}],
        },
        {
            "id": "service",
            "dependsOn": ["deployment"],
            "object": {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
            },
            "readyWhen": [{"type": "Exists"}],
        },
    ]
    return {
        "apiVersion": "platform.pequod.io/v1alpha1",
        "kind": "ResourceGraph",
        "metadata": {"name": name, "namespace": NAMESPACE, "finalizers": ["pequod.io/x"]},
        "spec": {
            "sourceRef": {"apiVersion": "v1", "kind": "ConfigMap", "name": name, "uid": "u"},
            "metadata": {"name": "bench", "version": "1", "renderHash": "sha256:" + "0" * 64},
            "nodes": nodes,
        },
    }


def graph_status(name: str) -> dict[str, Any]:
    return {
        "status": {
            "phase": "Ready",
            "observedGeneration": 1,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Ready",
                    "message": "3/3 nodes ready",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                    "observedGeneration": 1,
                }
            ],
            "readyNodes": 3,
            "totalNodes": 3,
            "nodes": [{"id": i, "phase": "Ready"} for i in ("config", "deployment", "service")],
            "inventory": [
                {"apiVersion": "v1", "kind": "ConfigMap", "namespace": NAMESPACE, "name": name}
            ],
        }
    }


def event(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.e", "namespace": NAMESPACE},
        "involvedObject": {"kind": "ConfigMap", "name": name, "namespace": NAMESPACE},
        "type": "Normal",
        "reason": "Ready",
        "message": "3/3 nodes ready; applied config, deployment, service",
        "source": {"component": "pequod"},
        "firstTimestamp": "2026-01-01T00:00:00Z",
        "lastTimestamp": "2026-01-01T00:00:00Z",
        "count": 1,
    }


def prepare(plane: ControlPlane) -> None:
    """The namespace, and Pequod's CRDs (for the ResourceGraph requests)."""
    kubectl = [str(find_binary("kubectl")), f"--kubeconfig={plane.kubeconfig}"]
    for arguments in (
        ["create", "namespace", NAMESPACE],
        ["apply", "--server-side", "-f", str(REPOSITORY / "manifests" / "crds")],
    ):
        subprocess.run([*kubectl, *arguments], check=True, capture_output=True)  # noqa: S603


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    plane: ControlPlane,
    label: str,
    count: int,
    concurrency: int,
    request: Callable[[int], Awaitable[Any]],
) -> tuple[str, float, float, float]:
    pids = plane.process_ids()
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    limit = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with limit:
            await request(index)

    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(count)))
    wall = time.monotonic() - started
    await asyncio.sleep(0.5)  # let etcd finish its share
    after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    per_request = {name: 1000 * (after[name] - before[name]) / count for name in pids}
    return label, per_request["kube-apiserver"], per_request["etcd"], 1000 * wall / count


async def run(count: int, concurrency: int, work: Path) -> None:
    plane = ControlPlane(work / "plane")
    plane.start()
    client = await KubeClient.from_kubeconfig(str(plane.kubeconfig))
    try:
        await asyncio.to_thread(prepare, plane)
        await asyncio.sleep(2.0)  # the CRDs become served

        def apply(rt: ResourceType, make: Callable[[str], dict[str, Any]], prefix: str) -> Any:
            return lambda i: client.apply(
                rt, make(f"{prefix}-{i}"), field_manager=FIELD_MANAGER, force=True
            )

        cases: list[tuple[str, Callable[[int], Awaitable[Any]]]] = [
            ("apply ConfigMap (create)", apply(CONFIG_MAPS, config_map, "cm")),
            ("apply Deployment (create)", apply(DEPLOYMENTS, deployment, "d")),
            ("apply ConfigMap (unchanged)", apply(CONFIG_MAPS, config_map, "cm")),
            ("GET, absent (etcd)", lambda i: client.get(CONFIG_MAPS, f"none-{i}", NAMESPACE)),
            (
                "GET, absent (watch cache)",
                lambda i: client.get(CONFIG_MAPS, f"none-{i}", NAMESPACE, cached_read=True),
            ),
            ("create Event", lambda i: client.create(EVENTS, event(f"e-{i}"))),
            ("apply ResourceGraph (create)", apply(GRAPHS, graph, "g")),
            (
                "merge-patch ResourceGraph status",
                lambda i: client.merge_patch(
                    GRAPHS,
                    f"g-{i}",
                    NAMESPACE,
                    copy.deepcopy(graph_status(f"g-{i}")),
                    subresource="status",
                    field_manager=FIELD_MANAGER,
                ),
            ),
            (
                "merge-patch finalizers",
                lambda i: client.merge_patch(
                    GRAPHS,
                    f"g-{i}",
                    NAMESPACE,
                    {"metadata": {"finalizers": ["pequod.io/x", "pequod.io/y"]}},
                    field_manager=FIELD_MANAGER,
                ),
            ),
        ]
        print(f"{count} requests of each kind, {concurrency} at once")
        print(f"{'request':<36}{'apiserver ms':>14}{'etcd ms':>9}{'wall ms':>9}")
        for label, request in cases:
            name, apiserver, etcd, wall = await measure(plane, label, count, concurrency, request)
            print(f"{name:<36}{apiserver:>14.2f}{etcd:>9.2f}{wall:>9.2f}", flush=True)
    finally:
        await client.close()
        plane.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pequod-api-costs-") as work:
        asyncio.run(run(arguments.count, arguments.concurrency, Path(work)))


if __name__ == "__main__":
    main()
