"""The operator's process lifecycle: where it runs (its namespace), the signals it answers,
and the run loop (serve the probes, win the Lease when elected, run the manager until a
signal or until leadership is lost)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable
from pathlib import Path

import structlog

from pequod.api.names import OPERATOR_NAMESPACE
from pequod.kube.leaderelection import LeaderElector
from pequod.kube.manager import Manager, dump_tasks
from pequod.metrics import LEADER
from pequod.operator.http_server import HttpServer

logger = structlog.get_logger(__name__)

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


async def run_until_stopped(
    manager: Manager, servers: list[HttpServer], elector: LeaderElector | None
) -> int:
    """Runs until SIGTERM or SIGINT (0), or until leadership is lost (1)."""
    stop = _signals(manager)
    try:
        for server in servers:
            port = await server.start()
            logger.info("serving", address=f"{server.host}:{port}", paths=server.paths)
        if elector is not None and not await _first(elector.acquire(), stop.wait()):
            return 0
        LEADER.set(1)
        logger.info("pequod operator starting")
        await manager.start()
        lost = await _first(stop.wait(), elector.hold()) if elector else await stop.wait()
        if elector is not None and lost is False:
            logger.error("leadership lost: stopping so that a new leader takes over cleanly")
            LEADER.set(0)
            await manager.stop()
            return 1
        logger.info("signal received, shutting down")
        await manager.stop()
        if elector is not None:
            await elector.release()
        return 0
    finally:
        LEADER.set(0)
        for server in servers:
            await server.stop()


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
