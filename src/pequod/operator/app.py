"""Wires the operator: client, manager, registry, renderer and the controllers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import structlog

from pequod.cue.runner import CueSettings
from pequod.delivery.fetcher import FetchSettings, ModuleFetcher
from pequod.kube.client import KubeClient
from pequod.kube.manager import Manager
from pequod.operator.events import EventRecorder
from pequod.operator.graph_controller import GraphReconciler
from pequod.operator.http_server import HttpServer, parse_bind_address
from pequod.operator.instance_controller import InstanceReconciler
from pequod.operator.module_sources import module_cache_root
from pequod.operator.registry import ApiRegistry
from pequod.operator.transform_controller import TransformReconciler
from pequod.render.render import Renderer

logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class OperatorSettings:
    kubeconfig: str | None = None
    context: str | None = None
    instance_concurrency: int = 4
    resync_period: float | None = 600.0
    cue_timeout: float = 10.0
    render_cache_entries: int = 4096
    apply_concurrency: int = 8
    ready_timeout: float = 600.0
    metrics_bind_address: str = ":8080"
    module_cache_dir: str | None = None
    module_cache_bytes: int = 512 * 1024 * 1024
    module_resolve_ttl: float = 60.0
    module_fetch_timeout: float = 30.0


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
    client = await KubeClient.from_kubeconfig(settings.kubeconfig, settings.context)
    manager = Manager(client, resync_period=settings.resync_period)
    registry = ApiRegistry()
    cue_settings = CueSettings(timeout_seconds=settings.cue_timeout)
    renderer = Renderer(cue_settings, settings.render_cache_entries)
    events = EventRecorder(client)
    fetcher = ModuleFetcher(
        Path(settings.module_cache_dir) if settings.module_cache_dir else module_cache_root(),
        FetchSettings(
            resolve_ttl=settings.module_resolve_ttl,
            timeout=settings.module_fetch_timeout,
            cache_bytes=settings.module_cache_bytes,
        ),
    )
    instances = InstanceReconciler(
        client,
        manager,
        registry,
        renderer,
        events,
        concurrency=settings.instance_concurrency,
        fetcher=fetcher,
    )
    transforms = TransformReconciler(
        client, manager, registry, instances.controller, events, cue_settings, fetcher
    )
    graphs = GraphReconciler(
        client,
        manager,
        events,
        apply_concurrency=settings.apply_concurrency,
        ready_timeout=settings.ready_timeout,
    )
    manager.add_controller(transforms.controller)  # type: ignore[arg-type]
    manager.add_controller(instances.controller)  # type: ignore[arg-type]
    manager.add_controller(graphs.controller)  # type: ignore[arg-type]
    return Operator(client, manager, registry, renderer, transforms, instances, graphs)


async def run_operator(settings: OperatorSettings) -> None:
    bind = parse_bind_address(settings.metrics_bind_address)
    operator = await build_operator(settings)
    server = HttpServer(*bind) if bind else None
    try:
        if server is not None:
            port = await server.start()
            logger.info("serving metrics", address=f"{server.host}:{port}", path="/metrics")
        logger.info("pequod operator starting")
        await operator.manager.run_until_signalled()
    finally:
        if server is not None:
            await server.stop()
        await operator.client.close()
