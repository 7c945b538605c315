"""The client-side rate limit: a burst passes at once, then requests are spaced at 1/qps, in
order; a bucket left alone fills up again; bad settings are refused."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from pequod.kube.ratelimit import RateLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))


def test_a_burst_passes_then_requests_are_spaced() -> None:
    time = FakeTime()
    limiter = RateLimiter(10.0, 3, clock=time.clock, sleep=time.sleep)

    async def take(count: int) -> None:
        for _ in range(count):
            await limiter.acquire()

    asyncio.run(take(6))
    assert time.slept == [0.1, 0.2, 0.3]

    # Left alone for a second, the bucket is full again (not fuller than the burst).
    time.now += 10.0
    time.slept.clear()
    asyncio.run(take(4))
    assert time.slept == [0.1]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="qps must be positive"):
        RateLimiter(0.0, 10)
    with pytest.raises(ValueError, match="qps must be positive"):
        RateLimiter(5.0, 0)
    result = subprocess.run(
        [sys.executable, "-m", "pequod", "run", "--kube-api-qps=5", "--kube-api-burst=0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--kube-api-burst at least 1" in result.stderr
