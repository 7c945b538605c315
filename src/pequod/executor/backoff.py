"""Exponential backoff with jitter for nodes whose apply failed transiently (throttling, server
errors, timeouts), counted per graph and node so one flaky node does not slow the others."""

from __future__ import annotations

import random


class NodeBackoff:
    def __init__(self, base: float = 1.0, cap: float = 300.0, jitter: float = 0.2) -> None:
        self.base = base
        self.cap = cap
        self.jitter = jitter
        self._failures: dict[tuple[str, str], int] = {}

    def failed(self, graph: str, node: str) -> tuple[int, float]:
        """Records one more failure; returns (consecutive failures, seconds to wait)."""
        count = self._failures.get((graph, node), 0) + 1
        self._failures[(graph, node)] = count
        delay = min(self.cap, self.base * 2 ** (count - 1))
        delay *= random.uniform(1 - self.jitter, 1 + self.jitter)
        return count, delay

    def succeeded(self, graph: str, node: str) -> None:
        self._failures.pop((graph, node), None)

    def forget(self, graph: str) -> None:
        for key in [k for k in self._failures if k[0] == graph]:
            del self._failures[key]

    def __len__(self) -> int:
        return len(self._failures)
