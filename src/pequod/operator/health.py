"""/healthz (the event loop answers) and /readyz (the API server is reachable, cue runs, and
the caches are synced on the leader; a standby replica is ready to take over)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from pequod.cue.runner import CueError, CueSettings, run_cue
from pequod.kube.client import API_OR_TRANSPORT_ERRORS, KubeClient
from pequod.kube.leaderelection import LeaderElector
from pequod.kube.manager import Manager

CHECK_INTERVAL_SECONDS = 10.0


class HealthChecks:
    def __init__(
        self,
        client: KubeClient,
        manager: Manager,
        cue_settings: CueSettings,
        elector: LeaderElector | None = None,
    ) -> None:
        self.client = client
        self.manager = manager
        self.cue_settings = cue_settings
        self.elector = elector
        self._cached: dict[str, tuple[float, str | None]] = {}

    async def healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(self, _: web.Request) -> web.Response:
        results = {
            "api-server": await self._cached_check("api-server", self._api_server),
            "cue": await self._cached_check("cue", self._cue),
            "informers": self._informers(),
        }
        lines = [f"[{'-' if bad else '+'}]{name} {bad or 'ok'}" for name, bad in results.items()]
        ready = not any(results.values())
        verdict = "readyz check passed" if ready else "readyz check failed"
        body = "\n".join([*lines, verdict]) + "\n"
        return web.Response(text=body, status=200 if ready else 503)

    async def _cached_check(
        self, name: str, check: Callable[[], Awaitable[str | None]]
    ) -> str | None:
        """A check's last outcome, run again when older than the check interval (a probe
        every few seconds must not cost an API request and a cue process each time)."""
        now = time.monotonic()
        cached = self._cached.get(name)
        if cached is not None and now - cached[0] < CHECK_INTERVAL_SECONDS and cached[1] is None:
            return cached[1]
        problem = await check()
        self._cached[name] = (now, problem)
        return problem

    async def _api_server(self) -> str | None:
        try:
            await self.client.request("get", "GET", "/version", request_timeout=5)
        except API_OR_TRANSPORT_ERRORS as error:
            return f"unreachable: {error}"
        return None

    async def _cue(self) -> str | None:
        try:
            await run_cue(["version"], cwd=Path(tempfile.gettempdir()), settings=self.cue_settings)
        except (CueError, OSError, LookupError) as error:
            return f"cannot run cue: {error}"
        return None

    def _informers(self) -> str | None:
        if self.elector is not None and not self.elector.is_leader:
            return None  # a standby: nothing to sync until it leads
        return None if self.manager.synced.is_set() else "caches not synced yet"
