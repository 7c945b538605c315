"""``pequod run``: the operator, against a kubeconfig or in-cluster."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from typing import Any

import structlog

from pequod.api.names import OPERATOR_NAMESPACE
from pequod.graph.size import DEFAULT_MAX_GRAPH_BYTES
from pequod.operator.app import OperatorSettings, run_operator


def register(commands: Any) -> None:
    run = commands.add_parser("run", help="run the operator")
    run.add_argument("--kubeconfig", help="default: in-cluster, else $KUBECONFIG/~/.kube/config")
    run.add_argument("--context")
    run.add_argument("--concurrency", type=int, default=16, help="instances reconciled at once")
    run.add_argument(
        "--graph-concurrency", type=int, default=16, help="ResourceGraphs executed at once"
    )
    run.add_argument("--resync-period", type=float, default=600.0, help="seconds (0: never)")
    run.add_argument("--cue-timeout", type=float, default=10.0)
    run.add_argument(
        "--kube-api-qps",
        type=float,
        default=0.0,
        help="client-side limit on API requests per second (0: none, the API server's "
        "priority and fairness decides)",
    )
    run.add_argument(
        "--kube-api-burst", type=int, default=100, help="requests allowed at once above the QPS"
    )
    run.add_argument(
        "--render-batch-size",
        type=int,
        default=32,
        help="most instances of one module evaluated by one cue process (1: one per render)",
    )
    run.add_argument("--apply-concurrency", type=int, default=8, help="objects applied at once")
    run.add_argument(
        "--ready-timeout", type=float, default=600.0, help="seconds a node may take to be Ready"
    )
    run.add_argument(
        "--max-graph-bytes",
        type=int,
        default=DEFAULT_MAX_GRAPH_BYTES,
        help="largest ResourceGraph an instance may render, in bytes; keep it below etcd's "
        f"--max-request-bytes (default {DEFAULT_MAX_GRAPH_BYTES}, etcd's default is 1572864)",
    )
    run.add_argument(
        "--module-cache-dir", help="where OCI and Git modules are cached ($PEQUOD_MODULE_CACHE)"
    )
    run.add_argument(
        "--module-cache-size", type=int, default=512, help="MiB of cached modules (LRU beyond)"
    )
    run.add_argument(
        "--module-resolve-ttl",
        type=float,
        default=60.0,
        help="seconds a tag or branch resolution is trusted",
    )
    run.add_argument(
        "--module-fetch-timeout", type=float, default=30.0, help="seconds per registry/git call"
    )
    run.add_argument(
        "--module-source-namespaces",
        type=_namespace_list,
        default=(),
        metavar="NS[,NS...]",
        help="namespaces besides the operator's own whose ConfigMaps may be module sources "
        "('*': any); whoever may edit such a ConfigMap decides what the operator applies",
    )
    run.add_argument(
        "--metrics-bind-address",
        default=":8080",
        help="[host]:port serving /metrics (0: off)",
    )
    run.add_argument(
        "--health-probe-bind-address",
        default=":8081",
        help="[host]:port serving /healthz and /readyz (0: off)",
    )
    run.add_argument(
        "--leader-elect",
        action="store_true",
        help="run as one of several replicas: only the holder of a Lease works",
    )
    run.add_argument("--leader-election-namespace", default=OPERATOR_NAMESPACE)
    run.add_argument("--leader-election-id", default="pequod-operator", help="the Lease's name")
    run.add_argument(
        "--leader-election-lease-duration",
        type=float,
        default=15.0,
        help="seconds a standby waits after the last renewal",
    )
    run.add_argument("--leader-election-renew-deadline", type=float, default=10.0)
    run.add_argument("--leader-election-retry-period", type=float, default=2.0)
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.add_argument("--log-format", default="json", choices=["json", "console"])
    run.set_defaults(run=_run)


_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _namespace_list(value: str) -> tuple[str, ...]:
    """``ns1,ns2`` → ("ns1", "ns2"); each a namespace name or ``*``."""
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    for name in names:
        if name != "*" and not (len(name) <= 63 and _NAMESPACE.match(name)):
            raise argparse.ArgumentTypeError(f"{name!r} is not a namespace name (nor '*')")
    return names


def configure_logging(level: str, log_format: str) -> None:
    """structlog for Pequod and, through the same renderer, for the libraries' stdlib logging
    (kubernetes-asyncio, aiohttp...): one line per event, JSON by default, with the context
    a reconcile binds (controller, key, reconcile_id)."""
    numeric = logging.getLevelName(level.upper())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def _run(arguments: argparse.Namespace) -> int:
    if arguments.kube_api_qps < 0 or arguments.kube_api_burst < 1:
        print(
            "pequod run: --kube-api-qps must be 0 or more and --kube-api-burst at least 1",
            file=sys.stderr,
        )
        return 2
    if arguments.max_graph_bytes < 1:
        print("pequod run: --max-graph-bytes must be at least 1", file=sys.stderr)
        return 2
    configure_logging(arguments.log_level, arguments.log_format)
    settings = OperatorSettings(
        kubeconfig=arguments.kubeconfig,
        context=arguments.context,
        instance_concurrency=arguments.concurrency,
        graph_concurrency=arguments.graph_concurrency,
        resync_period=arguments.resync_period or None,
        cue_timeout=arguments.cue_timeout,
        render_batch_size=arguments.render_batch_size,
        kube_api_qps=arguments.kube_api_qps,
        kube_api_burst=arguments.kube_api_burst,
        apply_concurrency=arguments.apply_concurrency,
        ready_timeout=arguments.ready_timeout,
        max_graph_bytes=arguments.max_graph_bytes,
        metrics_bind_address=arguments.metrics_bind_address,
        module_cache_dir=arguments.module_cache_dir,
        module_cache_bytes=arguments.module_cache_size * 1024 * 1024,
        module_resolve_ttl=arguments.module_resolve_ttl,
        module_fetch_timeout=arguments.module_fetch_timeout,
        module_source_namespaces=arguments.module_source_namespaces,
        health_probe_bind_address=arguments.health_probe_bind_address,
        leader_elect=arguments.leader_elect,
        leader_election_namespace=arguments.leader_election_namespace,
        leader_election_id=arguments.leader_election_id,
        leader_election_lease_duration=arguments.leader_election_lease_duration,
        leader_election_renew_deadline=arguments.leader_election_renew_deadline,
        leader_election_retry_period=arguments.leader_election_retry_period,
    )
    return asyncio.run(run_operator(settings))
