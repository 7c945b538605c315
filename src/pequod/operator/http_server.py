"""The operator's HTTP endpoints: Prometheus metrics (/metrics) and the probes (/healthz,
/readyz), each on its own bind address as controller-runtime does (:8080 and :8081)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pequod.metrics import REGISTRY

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def parse_bind_address(address: str) -> tuple[str, int] | None:
    """``":8080"`` → all interfaces, ``"127.0.0.1:9090"``, ``"0"`` → disabled (None)."""
    if address in ("", "0"):
        return None
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"bind address {address!r}: expected [host]:port or 0")
    return host or "0.0.0.0", int(port)


async def metrics_handler(_: web.Request) -> web.Response:
    body = generate_latest(REGISTRY)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


class HttpServer:
    def __init__(self, host: str, port: int, routes: dict[str, Handler]) -> None:
        self.host = host
        self.port = port
        self.paths = sorted(routes)
        app = web.Application()
        for path, handler in routes.items():
            app.router.add_get(path, handler)
        self._runner = web.AppRunner(app, access_log=None)

    async def start(self) -> int:
        """Starts serving; returns the bound port (useful when asked for port 0)."""
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        addresses = self._runner.addresses
        return int(addresses[0][1]) if addresses else self.port

    async def stop(self) -> None:
        await self._runner.cleanup()
