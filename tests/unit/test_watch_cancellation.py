"""An informer stops when it is cancelled, even while its watch stream is busy delivering
events (asyncio.wait_for in Python 3.11 could swallow a cancellation that arrived together
with a line, and the watch would run on: a benchmark and an operator shutdown hung on it)."""

from __future__ import annotations

import asyncio
import json

from aiohttp import web
from kubernetes_asyncio import client as k8s

from pequod.kube.client import KubeClient
from pequod.kube.resources import CONFIG_MAPS


async def _busy_watch(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    await response.prepare(request)
    version = 0
    while True:
        version += 1
        event = {
            "type": "MODIFIED",
            "object": {
                "metadata": {"name": "a", "namespace": "x", "resourceVersion": str(version)}
            },
        }
        await response.write(json.dumps(event).encode() + b"\n")
        await asyncio.sleep(0)


async def _consume(client: KubeClient, received: asyncio.Event) -> None:
    async for _event in client.watch(CONFIG_MAPS, "x", "0"):
        received.set()


async def _cancel_while_busy(rounds: int) -> None:
    app = web.Application()
    app.router.add_get("/api/v1/namespaces/x/configmaps", _busy_watch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    configuration = k8s.Configuration(host=f"http://127.0.0.1:{port}")
    client = KubeClient(k8s.ApiClient(configuration))
    try:
        for _ in range(rounds):
            received = asyncio.Event()

            task = asyncio.create_task(_consume(client, received))
            await received.wait()
            await asyncio.sleep(0.01)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=5)
            assert task in done, "the watch ran on after it was cancelled"
    finally:
        await client.close()
        await runner.cleanup()


def test_a_busy_watch_stops_when_cancelled() -> None:
    asyncio.run(_cancel_while_busy(rounds=30))
