"""Wires the operator from its settings: the client, the manager, the served kinds, the
renderer and the three controllers, the probes and leader election; then runs it."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

import structlog

from pequod.api.names import FIELD_MANAGER
from pequod.crdgen.schema_cache import SchemaCache
from pequod.cue.runner import CueSettings
from pequod.delivery.cache import ModuleCache, module_cache_root
from pequod.delivery.fetcher import FetchSettings
from pequod.delivery.resolver import ModuleResolver
from pequod.delivery.source_namespaces import SourceNamespaces
from pequod.kube.client import KubeClient
from pequod.kube.events import EventRecorder
from pequod.kube.leaderelection import LeaderElector, LeaseSettings
from pequod.kube.manager import Manager
from pequod.kube.ratelimit import RateLimiter
from pequod.kube.writes import ObjectWriter
from pequod.operator.graph_controller import GraphReconciler
from pequod.operator.health import HealthChecks
from pequod.operator.http_server import HttpServer, metrics_handler, parse_bind_address
from pequod.operator.instance_controller import InstanceReconciler
from pequod.operator.lifecycle import run_until_stopped, running_namespace
from pequod.operator.module_objects import KubeModuleObjects
from pequod.operator.revisions import RevisionStore
from pequod.operator.serving import ServedKinds
from pequod.operator.settings import (
    ClientSettings,
    LeaderElectionSettings,
    OperatorSettings,
)
from pequod.operator.transform_controller import TransformReconciler
from pequod.render.render import Renderer

logger = structlog.get_logger(__name__)


@dataclass
class Operator:
    client: KubeClient
    manager: Manager
    kinds: ServedKinds
    renderer: Renderer
    transforms: TransformReconciler
    instances: InstanceReconciler
    graphs: GraphReconciler


async def build_operator(settings: OperatorSettings) -> Operator:
    client = await _client(settings.client)
    manager = Manager(client, resync_period=settings.controllers.resync)
    writer = ObjectWriter(client, EventRecorder(client, FIELD_MANAGER), FIELD_MANAGER)
    kinds = ServedKinds(manager, writer)
    cue_settings = CueSettings(timeout_seconds=settings.render.cue_timeout)
    renderer = Renderer(
        cue_settings,
        settings.render.cache_entries,
        max_batch=settings.render.batch_size,
        max_graph_bytes=settings.render.max_graph_bytes,
    )
    modules = settings.modules
    cache_root = Path(modules.cache_dir) if modules.cache_dir else module_cache_root()
    source_namespaces = SourceNamespaces(
        modules.operator_namespace or running_namespace(), modules.source_namespaces
    )
    resolver = ModuleResolver(
        KubeModuleObjects(client),
        cache=ModuleCache(cache_root, modules.cache_bytes),
        fetch_settings=FetchSettings(
            resolve_ttl=modules.resolve_ttl,
            timeout=modules.fetch_timeout,
            cache_bytes=modules.cache_bytes,
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
        kinds,
        renderer,
        writer,
        concurrency=settings.controllers.instance_concurrency,
        resolver=resolver,
        source_namespaces=source_namespaces,
        revisions=RevisionStore(client, limit=settings.controllers.revision_history_limit),
    )
    transforms = TransformReconciler(
        client,
        manager,
        kinds,
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
        concurrency=settings.controllers.graph_concurrency,
        apply_concurrency=settings.apply.concurrency,
        ready_timeout=settings.apply.ready_timeout,
    )
    manager.add_controller(transforms.controller)  # type: ignore[arg-type]
    manager.add_controller(instances.controller)  # type: ignore[arg-type]
    manager.add_controller(graphs.controller)  # type: ignore[arg-type]
    return Operator(client, manager, kinds, renderer, transforms, instances, graphs)


async def _client(settings: ClientSettings) -> KubeClient:
    return await KubeClient.from_kubeconfig(
        settings.kubeconfig,
        settings.context,
        rate_limiter=RateLimiter(settings.qps, settings.burst) if settings.qps > 0 else None,
    )


def _elector(client: KubeClient, settings: LeaderElectionSettings) -> LeaderElector | None:
    if not settings.enabled:
        return None
    return LeaderElector(
        client,
        LeaseSettings(
            namespace=settings.namespace,
            name=settings.lease_name,
            identity=f"{socket.gethostname()}_{os.getpid()}",
            lease_duration=settings.lease_duration,
            renew_deadline=settings.renew_deadline,
            retry_period=settings.retry_period,
        ),
    )


async def run_operator(settings: OperatorSettings) -> int:
    """Runs until SIGTERM or SIGINT (0), or until leadership is lost (1)."""
    metrics_bind = parse_bind_address(settings.serving.metrics_bind_address)
    health_bind = parse_bind_address(settings.serving.health_probe_bind_address)
    operator = await build_operator(settings)
    try:
        elector = _elector(operator.client, settings.leader_election)
        health = HealthChecks(
            operator.client,
            operator.manager,
            CueSettings(timeout_seconds=settings.render.cue_timeout),
            elector,
        )
        servers: list[HttpServer] = []
        if metrics_bind:
            servers.append(HttpServer(*metrics_bind, {"/metrics": metrics_handler}))
        if health_bind:
            servers.append(
                HttpServer(*health_bind, {"/healthz": health.healthz, "/readyz": health.readyz})
            )
        return await run_until_stopped(operator.manager, servers, elector)
    finally:
        await operator.client.close()
