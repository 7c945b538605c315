"""Client-side rate limit for API requests (client-go's --kube-api-qps and --kube-api-burst):
a token bucket that refills at ``qps`` tokens a second and holds at most ``burst``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from pequod.metrics import API_CLIENT_THROTTLED_SECONDS


class RateLimiter:
    def __init__(
        self,
        qps: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError("qps must be positive and burst at least 1")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()

    async def acquire(self) -> None:
        """Takes a token, waiting for it when the bucket is empty. Each caller reserves its
        token at once, so waiters are served in order and never all wake together."""
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.qps)
        self._updated = now
        self._tokens -= 1.0
        if self._tokens < 0:
            delay = -self._tokens / self.qps
            API_CLIENT_THROTTLED_SECONDS.inc(delay)
            await self._sleep(delay)
