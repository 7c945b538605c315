"""The one exponential backoff with jitter, for everything that retries: the work queue's
rate-limited adds, an informer's relists, a node's transient apply failures, a module fetch.

The n-th consecutive failure (counting from 0) waits ``min(cap, base * 2**n)`` seconds,
stretched by a random factor in ``[1, 1 + jitter]``, so that many retries that failed together
do not come back together."""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True)
class Backoff:
    base: float = 1.0
    cap: float = 300.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0 or self.jitter < 0:
            raise ValueError("base, cap and jitter must not be negative")

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` earlier consecutive failures, before jitter."""
        try:
            return min(self.cap, self.base * 2.0**failures)
        except OverflowError:
            return self.cap

    def jittered(self, failures: int) -> float:
        """:meth:`delay`, stretched by the jitter."""
        return self.delay(failures) * (1 + random.uniform(0, self.jitter))


class FailureCounts(Generic[Key]):
    """Consecutive failures per key, and the backoff each one earns."""

    def __init__(self, backoff: Backoff) -> None:
        self.backoff = backoff
        self._failures: dict[Key, int] = {}

    def failed(self, key: Key) -> tuple[int, float]:
        """Counts one more failure of ``key``; returns (consecutive failures, seconds to wait,
        with jitter)."""
        before = self._failures.get(key, 0)
        self._failures[key] = before + 1
        return before + 1, self.backoff.jittered(before)

    def next_delay(self, key: Key) -> float:
        """What the next failure of ``key`` would wait, before jitter; changes nothing."""
        return self.backoff.delay(self._failures.get(key, 0))

    def failures(self, key: Key) -> int:
        return self._failures.get(key, 0)

    def forget(self, key: Key) -> None:
        """A success: the next failure of ``key`` starts from ``base`` again."""
        self._failures.pop(key, None)

    def forget_where(self, predicate: Callable[[Key], bool]) -> None:
        for key in [k for k in self._failures if predicate(k)]:
            del self._failures[key]

    def __len__(self) -> int:
        return len(self._failures)
