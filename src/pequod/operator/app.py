"""Wires the operator: client, manager, registry, renderer and the controllers."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

import structlog

from pequod.api.names import FIELD_MANAGER, OPERATOR_NAMESPACE
from pequod.crdgen.schema_cache import SchemaCache
from pequod.cue.runner import CueSettings
from pequod.delivery.cache import ModuleCache, module_cache_root
from pequod.delivery.fetcher import FetchSettings
from pequod.delivery.resolver import ModuleResolver
from pequod.delivery.source_namespaces import SourceNamespaces
from pequod.graph.size import DEFAULT_MAX_GRAPH_BYTES
from pequod.kube.client import KubeClient
from pequod.kube.events import EventRecorder
from pequod.kube.leaderelection import LeaderElector, LeaseSettings
from pequod.kube.manager import Manager, dump_tasks
from pequod.kube.ratelimit import RateLimiter
from pequod.kube.writes import ObjectWriter
from pequod.metrics import LEADER
from pequod.operator.graph_controller import GraphReconciler
from pequod.operator.health import HealthChecks
from pequod.operator.http_server import HttpServer, metrics_handler, parse_bind_address
from pequod.operator.instance_controller import InstanceReconciler
from pequod.operator.module_objects import KubeModuleObjects
from pequod.operator.registry import ApiRegistry
from pequod.operator.transform_controller import TransformReconciler
from pequod.render.render import Renderer

logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class OperatorSettings:
    kubeconfig: str | None = None
    context: str | None = None
    instance_concurrency: int = 16
    graph_concurrency: int = 16
    resync_period: float | None = 600.0
    cue_timeout: float = 10.0
    render_cache_entries: int = 256
    render_batch_size: int = 32
    apply_concurrency: int = 8
    ready_timeout: float = 600.0
    max_graph_bytes: int = DEFAULT_MAX_GRAPH_BYTES
    metrics_bind_address: str = ":8080"
    health_probe_bind_address: str = ":8081"
    leader_elect: bool = False
    leader_election_namespace: str = OPERATOR_NAMESPACE
    leader_election_id: str = "pequod-operator"
    leader_election_lease_duration: float = 15.0
    leader_election_renew_deadline: float = 10.0
    leader_election_retry_period: float = 2.0
    kube_api_qps: float = 0.0
    """Client-side limit on API requests a second; 0 leaves it to the API server's priority
    and fairness."""
    kube_api_burst: int = 100
    module_cache_dir: str | None = None
    module_cache_bytes: int = 512 * 1024 * 1024
    module_resolve_ttl: float = 60.0
    module_fetch_timeout: float = 30.0
    module_source_namespaces: tuple[str, ...] = ()
    """Namespaces besides the operator's own whose ConfigMaps may be module sources ("*": any)."""
    operator_namespace: str | None = None
    """Where the operator runs; unset: $POD_NAMESPACE, else the service account's namespace
    in a pod, else pequod-system."""


@dataclass
class Operator:
    client: KubeClient
    manager: Manager
    registry: ApiRegistry
    renderer: Renderer
    transforms: TransformReconciler
    instances: InstanceReconciler
    graphs: GraphReconciler


async def build_operator(settings: OperatorSettings) -> Operator:
    client = await KubeClient.from_kubeconfig(
        settings.kubeconfig,
        settings.context,
        rate_limiter=RateLimiter(settings.kube_api_qps, settings.kube_api_burst)
        if settings.kube_api_qps > 0
        else None,
    )
    manager = Manager(client, resync_period=settings.resync_period)
    registry = ApiRegistry()
    cue_settings = CueSettings(timeout_seconds=settings.cue_timeout)
    renderer = Renderer(
        cue_settings,
        settings.render_cache_entries,
        max_batch=settings.render_batch_size,
        max_graph_bytes=settings.max_graph_bytes,
    )
    writer = ObjectWriter(client, EventRecorder(client, FIELD_MANAGER), FIELD_MANAGER)
    cache_root = (
        Path(settings.module_cache_dir) if settings.module_cache_dir else module_cache_root()
    )
    source_namespaces = SourceNamespaces(
        settings.operator_namespace or running_namespace(), settings.module_source_namespaces
    )
    resolver = ModuleResolver(
        KubeModuleObjects(client),
        cache=ModuleCache(cache_root, settings.module_cache_bytes),
        fetch_settings=FetchSettings(
            resolve_ttl=settings.module_resolve_ttl,
            timeout=settings.module_fetch_timeout,
            cache_bytes=settings.module_cache_bytes,
        ),
        source_namespaces=source_namespaces,
    )
    logger.info(
        "module ConfigMaps and pull Secrets allowed",
        namespaces=list(source_namespaces.namespaces),
    )
    instances = InstanceReconciler(
        client,
        manager,
        registry,
        renderer,
        writer,
        concurrency=settings.instance_concurrency,
        resolver=resolver,
        source_namespaces=source_namespaces,
    )
    transforms = TransformReconciler(
        client,
        manager,
        registry,
        instances.controller,
        writer,
        cue_settings,
        resolver,
        SchemaCache(resolver.cache.schemas, after_store=resolver.cache.evict),
        source_namespaces,
    )
    graphs = GraphReconciler(
        client,
        manager,
        writer,
        concurrency=settings.graph_concurrency,
        apply_concurrency=settings.apply_concurrency,
        ready_timeout=settings.ready_timeout,
    )
    manager.add_controller(transforms.controller)  # type: ignore[arg-type]
    manager.add_controller(instances.controller)  # type: ignore[arg-type]
    manager.add_controller(graphs.controller)  # type: ignore[arg-type]
    return Operator(client, manager, registry, renderer, transforms, instances, graphs)


SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def running_namespace() -> str:
    """The namespace the operator runs in: $POD_NAMESPACE (the downward API), else the one
    Kubernetes mounts with the service account's token, else pequod-system (out of a pod)."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or OPERATOR_NAMESPACE
    except OSError:
        return OPERATOR_NAMESPACE


async def run_operator(settings: OperatorSettings) -> int:
    """Runs until SIGTERM or SIGINT (0), or until leadership is lost (1)."""
    metrics_bind = parse_bind_address(settings.metrics_bind_address)
    health_bind = parse_bind_address(settings.health_probe_bind_address)
    operator = await build_operator(settings)
    elector = (
        LeaderElector(
            operator.client,
            LeaseSettings(
                namespace=settings.leader_election_namespace,
                name=settings.leader_election_id,
                identity=f"{socket.gethostname()}_{os.getpid()}",
                lease_duration=settings.leader_election_lease_duration,
                renew_deadline=settings.leader_election_renew_deadline,
                retry_period=settings.leader_election_retry_period,
            ),
        )
        if settings.leader_elect
        else None
    )
    health = HealthChecks(
        operator.client,
        operator.manager,
        CueSettings(timeout_seconds=settings.cue_timeout),
        elector,
    )
    servers: list[HttpServer] = []
    if metrics_bind:
        servers.append(HttpServer(*metrics_bind, {"/metrics": metrics_handler}))
    if health_bind:
        servers.append(
            HttpServer(*health_bind, {"/healthz": health.healthz, "/readyz": health.readyz})
        )
    stop = _signals(operator.manager)
    try:
        for server in servers:
            port = await server.start()
            logger.info("serving", address=f"{server.host}:{port}", paths=server.paths)
        if elector is not None and not await _first(elector.acquire(), stop.wait()):
            return 0
        LEADER.set(1)
        logger.info("pequod operator starting")
        await operator.manager.start()
        lost = await _first(stop.wait(), elector.hold()) if elector else await stop.wait()
        if elector is not None and lost is False:
            logger.error("leadership lost: stopping so that a new leader takes over cleanly")
            LEADER.set(0)
            await operator.manager.stop()
            return 1
        logger.info("signal received, shutting down")
        await operator.manager.stop()
        if elector is not None:
            await elector.release()
        return 0
    finally:
        LEADER.set(0)
        for server in servers:
            await server.stop()
        await operator.client.close()


def _signals(manager: Manager) -> asyncio.Event:
    """An event set by SIGTERM or SIGINT; a second signal exits at once; SIGUSR1 logs where
    every task waits; SIGHUP asks for a full resync."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def first_signal() -> None:
        stop.set()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, _exit_now)

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, first_signal)
    loop.add_signal_handler(signal.SIGUSR1, dump_tasks)
    loop.add_signal_handler(signal.SIGHUP, manager.resync)
    return stop


def _exit_now() -> None:
    logger.warning("second signal, exiting without waiting")
    os._exit(1)


async def _first(winner: Awaitable[object], other: Awaitable[object]) -> bool:
    """Runs both; True when ``winner`` finishes first (the other is cancelled)."""
    first = asyncio.ensure_future(winner)
    second = asyncio.ensure_future(other)
    done, pending = await asyncio.wait({first, second}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return first in done
