"""Scale of the whole operator against the API-server floor.

    .venv/bin/python benchmarks/scale.py [--sizes 100,300,1000] [--variant apiserver|full]
                                         [--live-state] [--json scale.json]

For each N, on a local control plane of its own: the operator (`pequod run`, a separate
process) serves one Transform whose module renders a ConfigMap, a Deployment and a Service;
N instances are created and the benchmark waits until every one is READY. Measured: wall
time, p50/p95 from an instance's creation to its READY, operator CPU (its own and its cue
children's) and peak RSS, API requests by verb and cue runs (from the operator's /metrics).
The floor, on the same control plane: a bare asyncio client applying the same rendered
objects with server-side apply at the same concurrency (no rendering, no readiness).
Then: a full resync (SIGHUP) and a restart with nothing changed (cue runs, writes, seconds
until the work queues are empty), and two edits to the module that change every graph
(seconds until every graph carries the new render and is Ready, and the operator's writes per
instance): the first reaches every instance at once, the second is rolled out in waves of
100 (spec.rollout; the canary is 100 too), whose extra writes per instance are printed.

Variant `apiserver` (etcd and kube-apiserver; readiness `Exists`) measures Pequod itself;
`full` adds kube-controller-manager, kube-scheduler and kwok, and waits for Deployments to be
Available.

With `--live-state` the module also publishes a status field (`#Status`) and reads one value
known only after apply: the ConfigMap holds its Service's `clusterIP` (`#Observe`), so the
Service is applied first, the ConfigMap waits for the value, and the Deployment for the
ConfigMap. The objects are the same three.

Also reported: the CPU seconds etcd and kube-apiserver spent during the floor and during
Pequod's run (on two cores they share the machine with the operator), the operator's RSS
once it serves the Transform, and reconciles by controller. SIGUSR1 prints where each of the
benchmark's tasks waits. benchmarks/api_costs.py prices each kind of request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pequod.api.resources import TRANSFORMS
from pequod.controlplane import ControlPlane
from pequod.controlplane.cluster import free_port
from pequod.controlplane.process import ComponentProcess
from pequod.kube.client import KubeClient
from pequod.kube.informer import Informer, InformerEvent
from pequod.kube.manager import dump_tasks
from pequod.kube.resources import ResourceType
from pequod.module.source import load_directory
from pequod.render.instance import Instance
from pequod.render.render import Renderer
from pequod.toolchain.locate import find_binary

REPOSITORY = Path(__file__).resolve().parent.parent
INSTANCES = ResourceType("platform.pequod.io", "v1alpha1", "BenchApp", "benchapps", True)
GRAPHS = ResourceType("platform.pequod.io", "v1alpha1", "ResourceGraph", "resourcegraphs", True)
NAMESPACE = "bench"
FLOOR_NAMESPACE = "floor"
CLIENT_CONCURRENCY = 16

MODULE = """package benchapp

// A small application: its settings, a Deployment and a Service.
#Input: {
	// Container image.
	image: string | *"ghcr.io/acme/app:1.0"
	// Number of pods.
	replicas: int & >=0 & <=10 | *1
}

#Render: {
	input: {
		metadata: {name: string, namespace: string, labels?: {...}, annotations?: {...}}
		spec: #Input
	}
	OBSERVED
	let appName = input.metadata.name
	let appLabels = {"app.kubernetes.io/name": appName, "bench/edition": "EDITION"}
	output: nodes: [
		{
			id: "config"
			object: {
				apiVersion: "v1", kind: "ConfigMap"
				metadata: {name: appName, labels: appLabels}
				data: {image: input.spec.image CONFIG_DATA}
			}
			READY
		},
		{
			id: "deployment"
			dependsOn: ["config"]
			object: {
				apiVersion: "apps/v1", kind: "Deployment"
				metadata: {name: appName, labels: appLabels}
				spec: {
					replicas: input.spec.replicas
					selector: matchLabels: {"app.kubernetes.io/name": appName}
					template: {
						metadata: labels: {"app.kubernetes.io/name": appName}
						spec: containers: [{
							"name": "app"
							"image": input.spec.image
							ports: [{containerPort: 8080}]
						}]
					}
				}
			}
			READY
		},
		{
			id: "service"
			LIVE_ORDER dependsOn: ["deployment"]
			object: {
				apiVersion: "v1", kind: "Service"
				metadata: {name: appName, labels: appLabels}
				spec: {
					selector: {"app.kubernetes.io/name": appName}
					ports: [{port: 80, targetPort: 8080}]
				}
			}
			READY
		},
	]
}
"""


LIVE_STATE = """
#Status: {
	// Where the application's Service answers.
	address?: string
}
#Observe: {
	input: _
	nodes: service: ["spec.clusterIP"]
}
"""


def module_source(edition: str, variant: str, live_state: bool = False) -> str:
    ready = 'readyWhen: [{type: "Exists"}]' if variant == "apiserver" else ""
    source = MODULE.replace("EDITION", edition).replace("READY", ready)
    if not live_state:
        return source.replace("OBSERVED", "").replace("CONFIG_DATA", "").replace("LIVE_ORDER", "")
    return (
        source.replace(
            "OBSERVED",
            "observed: {nodes: [string]: _, references: [string]: _}\n"
            '\tstatus: #Status & {address: "\\(observed.nodes.service.spec.clusterIP):80"}',
        )
        .replace("CONFIG_DATA", ", serviceAddress: observed.nodes.service.spec.clusterIP")
        .replace("LIVE_ORDER", "//")
        + LIVE_STATE
    )


def cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) of a process, and of its children that have exited."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks, (int(fields[13]) + int(fields[14])) / ticks


def process_cpu_seconds(pid: int) -> float:
    return cpu_seconds(pid)[0]


def plane_cpu_seconds(plane: ControlPlane) -> dict[str, float]:
    """CPU seconds used so far by each component of the control plane."""
    return {name: process_cpu_seconds(pid) for name, pid in plane.process_ids().items()}


def cpu_difference(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {name: round(after[name] - before.get(name, 0.0), 1) for name in after}


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


# -- the operator as a process -------------------------------------------------------------


class Operator:
    def __init__(self, plane: ControlPlane, log: Path, apply_concurrency: int) -> None:
        self.plane = plane
        self.log = log
        self.apply_concurrency = apply_concurrency
        self.metrics_port = free_port()
        self.component: ComponentProcess | None = None

    @property
    def pid(self) -> int:
        assert self.component is not None
        assert self.component.pid is not None
        return self.component.pid

    def start(self) -> float:
        """Starts it (it dies with the benchmark); returns the seconds until it serves."""
        started = time.monotonic()
        offset = self.log.stat().st_size if self.log.exists() else 0
        self.component = ComponentProcess(
            "operator",
            [
                sys.executable,
                *self.profile_arguments(),
                "-m",
                "pequod",
                "run",
                f"--kubeconfig={self.plane.kubeconfig}",
                "--resync-period=0",
                f"--apply-concurrency={self.apply_concurrency}",
                f"--metrics-bind-address=127.0.0.1:{self.metrics_port}",
                f"--health-probe-bind-address=127.0.0.1:{free_port()}",
                "--log-format=console",
                "--log-level=warning",
            ],
            self.log,
            die_with_parent=True,
        )
        self.component.start()
        while True:
            if self._metrics_up():
                return time.monotonic() - started
            if self.component.exit_code() is not None:
                text = self.log.read_bytes()[offset:].decode(errors="replace")
                raise RuntimeError(f"the operator exited:\n{text[-3000:]}")
            time.sleep(0.1)

    def profile_arguments(self) -> list[str]:
        """$PEQUOD_BENCH_PROFILE=DIR runs the operator under cProfile, one file per start."""
        directory = os.environ.get("PEQUOD_BENCH_PROFILE")
        if not directory:
            return []
        self.starts = getattr(self, "starts", 0) + 1
        return ["-m", "cProfile", "-o", f"{directory}/{self.log.stem}-{self.starts}.prof"]

    def _metrics_up(self) -> bool:
        try:
            self.metrics()
        except OSError:
            return False
        return True

    def stop(self) -> None:
        if self.component is not None:
            self.component.stop(timeout=60)

    def metrics(self) -> dict[str, float]:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        return samples

    def resources(self) -> dict[str, float]:
        """CPU seconds (own, and of its exited cue children) and peak RSS of the process."""
        own, children = cpu_seconds(self.pid)
        return {
            "cpu_seconds": own,
            "children_cpu_seconds": children,
            "peak_rss_mib": self._status_kib("VmHWM:") / 1024,
        }

    def _status_kib(self, field_name: str) -> int:
        status = Path(f"/proc/{self.pid}/status").read_text()
        return next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith(field_name)
        )

    def rss_mib(self) -> float:
        return self._status_kib("VmRSS:") / 1024

    def idle(self) -> bool:
        metrics = self.metrics()
        return all(
            value == 0
            for name, value in metrics.items()
            if name.startswith(("workqueue_depth", "workqueue_unfinished_work_seconds"))
        )


def cue_runs(metrics: dict[str, float]) -> int:
    return int(
        sum(v for k, v in metrics.items() if k.startswith("pequod_cue_eval_duration_seconds_count"))
    )


def requests_by_verb(metrics: dict[str, float]) -> dict[str, int]:
    prefix = 'pequod_api_requests_total{verb="'
    return {k[len(prefix) : -2]: int(v) for k, v in metrics.items() if k.startswith(prefix)}


def reconciles_by_controller(metrics: dict[str, float]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name, value in metrics.items():
        if name.startswith("pequod_reconcile_total{"):
            controller = name.split('controller="', 1)[1].split('"', 1)[0]
            counts[controller] = counts.get(controller, 0) + int(value)
    return counts


def writes(by_verb: dict[str, int]) -> int:
    return sum(by_verb.get(v, 0) for v in ("create", "apply", "patch", "update", "delete"))


def difference(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {
        k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)
    }


async def wait_until(probe: Any, within: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if await asyncio.to_thread(probe):
            return time.monotonic() - started
        await asyncio.sleep(0.2)
    raise TimeoutError(f"not within {within:.0f} s: {what}")


# -- one size ------------------------------------------------------------------------------


@dataclass
class Figures:
    size: int
    variant: str
    wall_seconds: float = 0.0
    floor_seconds: float = 0.0
    ready_p50_seconds: float = 0.0
    ready_p95_seconds: float = 0.0
    cpu_seconds: float = 0.0
    children_cpu_seconds: float = 0.0
    peak_rss_mib: float = 0.0
    serving_rss_mib: float = 0.0
    reconciles: dict[str, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    cue_runs: int = 0
    resync: dict[str, Any] = field(default_factory=dict)
    restart: dict[str, Any] = field(default_factory=dict)
    module_edit_seconds: float = 0.0
    module_edit_writes: int = 0
    rollout_edit_seconds: float = 0.0
    rollout_edit_writes: int = 0
    rollout_waves: int = 0
    module_edit_requests: dict[str, int] = field(default_factory=dict)
    rollout_edit_requests: dict[str, int] = field(default_factory=dict)
    floor_plane_cpu_seconds: dict[str, float] = field(default_factory=dict)
    plane_cpu_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.wall_seconds / self.floor_seconds if self.floor_seconds else 0.0


async def floor(client: KubeClient, objects: list[dict[str, Any]], concurrency: int) -> float:
    """The same objects, applied by a bare client at the same concurrency."""
    from pequod.kube.discovery import Discovery

    discovery = Discovery(client)
    limit = asyncio.Semaphore(concurrency)

    async def apply(obj: dict[str, Any]) -> None:
        rt = await discovery.resource_type(obj["apiVersion"], obj["kind"])
        async with limit:
            await client.apply(rt, obj, field_manager="floor", force=True)

    started = time.monotonic()
    await asyncio.gather(*(apply(o) for o in objects))
    return time.monotonic() - started


def write_module(directory: Path, variant: str, live_state: bool) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "module.cue").write_text(module_source("one", variant, live_state))


async def rendered_objects(
    size: int, variant: str, live_state: bool, directory: Path
) -> list[dict[str, Any]]:
    """The objects the module renders for N instances (rendered here, not timed; a value read
    after apply is its pending placeholder, a string like the real one)."""
    await asyncio.to_thread(write_module, directory, variant, live_state)
    module = await asyncio.to_thread(load_directory, directory)
    renderer = Renderer()
    limit = asyncio.Semaphore(2)
    objects: list[dict[str, Any]] = []

    async def one(index: int) -> None:
        async with limit:
            result = await renderer.render_with_state(
                module,
                Instance(f"app-{index}", FLOOR_NAMESPACE, {"replicas": 1}),
                node_values={},
                referenced={},
            )
        for node in result.graph.nodes:
            obj = json.loads(json.dumps(node.object))
            obj["metadata"]["namespace"] = FLOOR_NAMESPACE
            objects.append(obj)

    await asyncio.gather(*(one(i) for i in range(size)))
    return objects


def kubectl(plane: ControlPlane, *arguments: str, stdin: str | None = None) -> None:
    subprocess.run(  # noqa: S603 - the pinned kubectl
        [str(find_binary("kubectl")), f"--kubeconfig={plane.kubeconfig}", *arguments],
        input=stdin,
        text=True,
        capture_output=True,
        check=True,
        timeout=120,
    )


ROLLOUT_WAVE = 100
"""The wave size (and canary) of the module edit rolled out in waves."""


def transform(source: str, *, waves: bool = False) -> str:
    indented = "\n".join("      " + line if line else "" for line in source.splitlines())
    rollout = (
        f"  rollout:\n    strategy: Waves\n    canary: {{instances: {ROLLOUT_WAVE}}}\n"
        f"    waveSize: {ROLLOUT_WAVE}\n    waveDeadlineSeconds: 600\n"
        if waves
        else ""
    )
    return (
        "apiVersion: platform.pequod.io/v1alpha1\nkind: Transform\nmetadata:\n  name: benchapp\n"
        "spec:\n  kind: BenchApp\n  cueRef:\n    type: inline\n    ref: |\n"
        + indented
        + "\n"
        + rollout
    )


async def measure(
    size: int, variant: str, live_state: bool, apply_concurrency: int, work: Path
) -> Figures:
    # SIGUSR1 prints where each of the benchmark's tasks waits.
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_tasks)
    figures = Figures(size, variant + ("+live" if live_state else ""))
    plane = ControlPlane(work / f"plane-{size}")
    plane.start()
    operator = Operator(plane, work / f"operator-{size}.log", apply_concurrency)
    client = await KubeClient.from_kubeconfig(str(plane.kubeconfig))
    try:
        if variant == "full":
            plane.start_workloads()
        for namespace in (NAMESPACE, FLOOR_NAMESPACE):
            kubectl(plane, "create", "namespace", namespace)
        kubectl(plane, "apply", "--server-side", "-f", str(REPOSITORY / "manifests" / "crds"))

        objects = await rendered_objects(size, variant, live_state, work / f"module-{size}")
        before_floor = plane_cpu_seconds(plane)
        figures.floor_seconds = await floor(client, objects, apply_concurrency)
        figures.floor_plane_cpu_seconds = cpu_difference(plane_cpu_seconds(plane), before_floor)

        operator.start()
        kubectl(
            plane, "apply", "-f", "-", stdin=transform(module_source("one", variant, live_state))
        )
        kubectl(plane, "wait", "--for=condition=Ready", "transform/benchapp", "--timeout=120s")
        figures.serving_rss_mib = operator.rss_mib()

        created: dict[str, float] = {}
        ready: dict[str, float] = {}
        all_ready = asyncio.Event()

        def on_instance(event: InformerEvent) -> None:
            name = event.object["metadata"]["name"]
            conditions = (event.object.get("status") or {}).get("conditions") or []
            if name not in ready and any(
                c["type"] == "Ready" and c["status"] == "True" for c in conditions
            ):
                ready[name] = time.monotonic()
                if len(ready) == size:
                    all_ready.set()

        informer = Informer(client, INSTANCES, namespace=NAMESPACE)
        informer.add_handler(on_instance)
        watching = asyncio.create_task(informer.run())
        await informer.synced.wait()
        limit = asyncio.Semaphore(CLIENT_CONCURRENCY)

        async def create(index: int) -> None:
            name = f"app-{index}"
            async with limit:
                created[name] = time.monotonic()
                await client.create(
                    INSTANCES,
                    {
                        "apiVersion": "platform.pequod.io/v1alpha1",
                        "kind": "BenchApp",
                        "metadata": {"name": name, "namespace": NAMESPACE},
                        "spec": {"replicas": 1},
                    },
                )

        before_instances = plane_cpu_seconds(plane)
        first = time.monotonic()
        await asyncio.gather(*(create(i) for i in range(size)))
        await asyncio.wait_for(all_ready.wait(), timeout=60 + size * 1.5)
        figures.plane_cpu_seconds = cpu_difference(plane_cpu_seconds(plane), before_instances)
        figures.wall_seconds = max(ready.values()) - first
        latencies = [ready[n] - created[n] for n in created]
        figures.ready_p50_seconds = percentile(latencies, 0.5)
        figures.ready_p95_seconds = percentile(latencies, 0.95)
        await wait_until(operator.idle, 120, "queues idle")
        metrics = operator.metrics()
        figures.requests = requests_by_verb(metrics)
        figures.reconciles = reconciles_by_controller(metrics)
        figures.cue_runs = cue_runs(metrics)
        figures.__dict__.update(operator.resources())

        # A full resync with nothing changed. The Transform's counts (instances, and instances
        # per module version) are written at most once a second after the last instance
        # changed: that write belongs to the creations, so the resync starts after it.
        await asyncio.sleep(1.5)
        before = operator.metrics()
        os.kill(operator.pid, signal.SIGHUP)
        await asyncio.sleep(0.5)
        seconds = 0.5 + await wait_until(operator.idle, 120, "queues idle after the resync")
        after = operator.metrics()
        figures.resync = {
            "seconds_to_idle": seconds,
            "cue_runs": cue_runs(after) - cue_runs(before),
            "writes": writes(difference(requests_by_verb(after), requests_by_verb(before))),
            "reconciles": int(
                sum(v for k, v in after.items() if k.startswith("pequod_reconcile_total{"))
                - sum(v for k, v in before.items() if k.startswith("pequod_reconcile_total{"))
            ),
        }

        # A restart with nothing changed.
        operator.stop()
        started = time.monotonic()
        operator.start()
        await asyncio.sleep(1.0)
        await wait_until(operator.idle, 180, "queues idle after the restart")
        metrics = operator.metrics()
        figures.restart = {
            "seconds_to_idle": time.monotonic() - started,
            "cue_runs": cue_runs(metrics),
            "writes": writes(requests_by_verb(metrics)),
        }

        # One module edit that changes every graph, all at once; then another, rolled out in
        # waves of ROLLOUT_WAVE.
        graphs_done = asyncio.Event()
        new_graphs: set[str] = set()
        graphs = Informer(client, GRAPHS, namespace=NAMESPACE)
        old_hashes: dict[str, str] = {}

        def on_graph(event: InformerEvent) -> None:
            name = event.object["metadata"]["name"]
            render = event.object["spec"]["metadata"]["renderHash"]
            if name not in old_hashes:
                old_hashes[name] = render
                return
            status = event.object.get("status") or {}
            if render != old_hashes[name] and status.get("phase") == "Ready":
                new_graphs.add(name)
                if len(new_graphs) == size:
                    graphs_done.set()

        graphs.add_handler(on_graph)
        watching_graphs = asyncio.create_task(graphs.run())
        await graphs.synced.wait()

        async def edit(edition: str, waves: bool) -> tuple[float, dict[str, int]]:
            """Seconds until every graph carries the new render and is Ready, and the requests
            the operator made meanwhile, by verb (once its queues are idle)."""
            graphs_done.clear()
            new_graphs.clear()
            old_hashes.update(
                {o["metadata"]["name"]: o["spec"]["metadata"]["renderHash"] for o in graphs.list()}
            )
            before = requests_by_verb(operator.metrics())
            started = time.monotonic()
            source = module_source(edition, variant, live_state)
            kubectl(plane, "apply", "-f", "-", stdin=transform(source, waves=waves))
            try:
                await asyncio.wait_for(graphs_done.wait(), timeout=60 + size * 1.5)
            except TimeoutError:
                raise TimeoutError(
                    f"after the module edit, {len(new_graphs)}/{size} graphs carry the new "
                    f"render and are Ready; {len(old_hashes)} graphs seen"
                ) from None
            seconds = time.monotonic() - started
            await wait_until(operator.idle, 120, "queues idle after the module edit")

            # The Transform's coalesced count write of the instances' module versions may come
            # after the queues are idle: it is one of the edit's writes.
            for _ in range(150):
                found = await client.get(TRANSFORMS, "benchapp") or {}
                versions = (found.get("status") or {}).get("moduleVersions") or []
                if len(versions) == 1 and versions[0].get("instances") == size:
                    break
                await asyncio.sleep(0.2)
            else:
                raise TimeoutError("the Transform's count of the new module version")
            return seconds, difference(requests_by_verb(operator.metrics()), before)

        figures.module_edit_seconds, figures.module_edit_requests = await edit("two", False)
        figures.rollout_edit_seconds, figures.rollout_edit_requests = await edit("three", True)
        figures.module_edit_writes = writes(figures.module_edit_requests)
        figures.rollout_edit_writes = writes(figures.rollout_edit_requests)
        rollout = (await client.get(TRANSFORMS, "benchapp") or {}).get("status", {}).get("rollout")
        figures.rollout_waves = len((rollout or {}).get("waves") or ())
        for task in (watching, watching_graphs):
            task.cancel()
        await asyncio.gather(watching, watching_graphs, return_exceptions=True)
    finally:
        operator.stop()
        await client.close()
        plane.stop()
    return figures


def report(results: list[Figures]) -> None:
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    header = (
        f"{'variant':<15}{'N':>6}{'wall s':>8}{'floor s':>9}{'ratio':>7}{'p50 s':>7}{'p95 s':>7}"
        f"{'cpu s':>7}{'cue cpu':>8}{'RSS MiB':>9}{'ms/inst':>9}{'cue':>6}{'writes':>8}"
    )
    print(header)
    print("-" * len(header))
    for f in results:
        print(
            f"{f.variant:<15}{f.size:>6}{f.wall_seconds:>8.1f}{f.floor_seconds:>9.1f}"
            f"{f.ratio:>7.2f}{f.ready_p50_seconds:>7.1f}{f.ready_p95_seconds:>7.1f}"
            f"{f.cpu_seconds:>7.1f}{f.children_cpu_seconds:>8.1f}{f.peak_rss_mib:>9.0f}"
            f"{1000 * f.wall_seconds / f.size:>9.1f}{f.cue_runs:>6}{writes(f.requests):>8}"
        )
    print()
    header = (
        f"{'variant':<15}{'N':>6}  {'resync: s, cue, writes':<26}"
        f"{'restart: s, cue, writes':<26}{'module edit s':>14}"
    )
    print(header)
    print("-" * len(header))
    for f in results:
        resync = f"{f.resync['seconds_to_idle']:.1f}, {f.resync['cue_runs']}, {f.resync['writes']}"
        restart = (
            f"{f.restart['seconds_to_idle']:.1f}, {f.restart['cue_runs']}, {f.restart['writes']}"
        )
        print(
            f"{f.variant:<15}{f.size:>6}  {resync:<26}{restart:<26}{f.module_edit_seconds:>14.1f}"
        )
    print()
    for f in results:
        print(
            f"control plane CPU s, N={f.size}: floor {json.dumps(f.floor_plane_cpu_seconds)}, "
            f"Pequod {json.dumps(f.plane_cpu_seconds)}"
        )
    for f in results:
        print(
            f"N={f.size}: RSS serving the Transform {f.serving_rss_mib:.0f} MiB; "
            f"reconciles {json.dumps(f.reconciles)}"
        )
    for f in results:
        print(f"requests by verb, N={f.size}: {json.dumps(dict(sorted(f.requests.items())))}")
    print()
    header = (
        f"{'module edit':<15}{'N':>6}{'all at once s':>15}{'writes/inst':>12}"
        f"{'waves s':>9}{'waves':>7}{'writes/inst':>12}{'extra/inst':>12}"
    )
    print(header)
    print("-" * len(header))
    for f in results:
        at_once, in_waves = f.module_edit_writes / f.size, f.rollout_edit_writes / f.size
        print(
            f"{f.variant:<15}{f.size:>6}{f.module_edit_seconds:>15.1f}{at_once:>12.2f}"
            f"{f.rollout_edit_seconds:>9.1f}{f.rollout_waves:>7}{in_waves:>12.2f}"
            f"{in_waves - at_once:>12.2f}"
        )
    for f in results:
        once = json.dumps(dict(sorted(f.module_edit_requests.items())))
        waved = json.dumps(dict(sorted(f.rollout_edit_requests.items())))
        print(f"module edit requests by verb, N={f.size}: all at once {once}; waves {waved}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,300,1000")
    parser.add_argument("--variant", choices=["apiserver", "full"], default="apiserver")
    parser.add_argument(
        "--live-state",
        action="store_true",
        help="a module with #Status and one value read after apply",
    )
    parser.add_argument("--apply-concurrency", type=int, default=8)
    parser.add_argument("--json", help="also write the figures to this file")
    arguments = parser.parse_args()
    sizes = [int(s) for s in arguments.sizes.split(",")]
    results: list[Figures] = []
    with tempfile.TemporaryDirectory(prefix="pequod-scale-") as work:
        for size in sizes:
            figures = asyncio.run(
                measure(
                    size,
                    arguments.variant,
                    arguments.live_state,
                    arguments.apply_concurrency,
                    Path(work),
                )
            )
            results.append(figures)
            print(f"N={size}: {figures.wall_seconds:.1f} s", file=sys.stderr, flush=True)
    report(results)
    if arguments.json:
        with open(arguments.json, "w") as handle:
            json.dump(
                [{**f.__dict__, "ratio": f.ratio} for f in results], handle, indent=2, default=str
            )


if __name__ == "__main__":
    main()
