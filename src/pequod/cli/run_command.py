"""``pequod run``: the operator, against a kubeconfig or in-cluster."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

import structlog

from pequod.operator.app import run_operator
from pequod.operator.settings import OperatorSettings, setting_flags, settings_from


def register(commands: Any) -> None:
    run = commands.add_parser("run", help="run the operator")
    add_setting_flags(run)
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.add_argument("--log-format", default="json", choices=["json", "console"])
    run.set_defaults(run=_run)


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per settings field that names one, with the field's default and help."""
    for item in setting_flags():
        if isinstance(item.default, bool):
            parser.add_argument(
                item.flag, dest=item.dest, action="store_true", default=item.default, help=item.help
            )
            continue
        parse = item.parse
        if parse is None:
            parse = type(item.default) if isinstance(item.default, int | float) else str
        parser.add_argument(
            item.flag,
            dest=item.dest,
            type=parse,
            default=item.default,
            help=item.help,
            # The metavar argparse would derive from the flag (the dest names the field).
            metavar=item.metavar or item.flag.lstrip("-").replace("-", "_").upper(),
        )


def settings_of(arguments: argparse.Namespace) -> OperatorSettings:
    """The settings the parsed flags say."""
    return settings_from({item.dest: getattr(arguments, item.dest) for item in setting_flags()})


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
    settings = settings_of(arguments)
    if settings.client.qps < 0 or settings.client.burst < 1:
        print(
            "pequod run: --kube-api-qps must be 0 or more and --kube-api-burst at least 1",
            file=sys.stderr,
        )
        return 2
    if settings.render.max_graph_bytes < 1:
        print("pequod run: --max-graph-bytes must be at least 1", file=sys.stderr)
        return 2
    configure_logging(arguments.log_level, arguments.log_format)
    return asyncio.run(run_operator(settings))
