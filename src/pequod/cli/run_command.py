"""``pequod run``: the operator, against a kubeconfig or in-cluster."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

import structlog

from pequod.operator.app import OperatorSettings, run_operator


def register(commands: Any) -> None:
    run = commands.add_parser("run", help="run the operator")
    run.add_argument("--kubeconfig", help="default: in-cluster, else $KUBECONFIG/~/.kube/config")
    run.add_argument("--context")
    run.add_argument("--concurrency", type=int, default=4, help="instances reconciled at once")
    run.add_argument("--resync-period", type=float, default=600.0, help="seconds (0: never)")
    run.add_argument("--cue-timeout", type=float, default=10.0)
    run.add_argument("--apply-concurrency", type=int, default=8, help="objects applied at once")
    run.add_argument(
        "--ready-timeout", type=float, default=600.0, help="seconds a node may take to be Ready"
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
        "--metrics-bind-address",
        default=":8080",
        help="[host]:port serving /metrics (0: off)",
    )
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.add_argument("--log-format", default="json", choices=["json", "console"])
    run.set_defaults(run=_run)


def configure_logging(level: str, log_format: str) -> None:
    numeric = logging.getLevelName(level.upper())
    logging.basicConfig(stream=sys.stderr, level=numeric, format="%(message)s")
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )


def _run(arguments: argparse.Namespace) -> int:
    configure_logging(arguments.log_level, arguments.log_format)
    settings = OperatorSettings(
        kubeconfig=arguments.kubeconfig,
        context=arguments.context,
        instance_concurrency=arguments.concurrency,
        resync_period=arguments.resync_period or None,
        cue_timeout=arguments.cue_timeout,
        apply_concurrency=arguments.apply_concurrency,
        ready_timeout=arguments.ready_timeout,
        metrics_bind_address=arguments.metrics_bind_address,
        module_cache_dir=arguments.module_cache_dir,
        module_cache_bytes=arguments.module_cache_size * 1024 * 1024,
        module_resolve_ttl=arguments.module_resolve_ttl,
        module_fetch_timeout=arguments.module_fetch_timeout,
    )
    asyncio.run(run_operator(settings))
    return 0
