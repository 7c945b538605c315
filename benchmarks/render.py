"""Render throughput and latency of the embedded modules, cold (a `cue` run per render) and
cached (the same instance again: served from the render cache by render hash).

    .venv/bin/python benchmarks/render.py [--renders 60] [--concurrency 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from collections.abc import Callable
from typing import Any

from pequod.module.embedded import load_embedded
from pequod.render.instance import Instance
from pequod.render.render import Renderer


def webservice_spec(index: int) -> dict[str, Any]:
    return {"image": f"ghcr.io/acme/app-{index}:1.0", "replicas": 1 + index % 5}


def database_spec(index: int) -> dict[str, Any]:
    return {"storage": f"{1 + index % 9}Gi"}


MODULES: dict[str, Callable[[int], dict[str, Any]]] = {
    "embedded:webservice@1.1.0": webservice_spec,
    "embedded:database@1.0.0": database_spec,
}


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(reference: str, renders: int, concurrency: int) -> dict[str, Any]:
    module = load_embedded(reference)
    policy = load_embedded("embedded:policy/defaults")
    renderer = Renderer()
    make_spec = MODULES[reference]
    latencies: list[float] = []
    limit = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with limit:
            started = time.perf_counter()
            await renderer.render(
                module, Instance(f"app-{index}", "bench", make_spec(index)), policies=[policy]
            )
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(renders)))
    cold_seconds = time.perf_counter() - started

    cached_rounds = renders * 20
    started = time.perf_counter()
    for index in range(cached_rounds):
        await renderer.render(
            module,
            Instance(f"app-{index % renders}", "bench", make_spec(index % renders)),
            policies=[policy],
        )
    cached_seconds = time.perf_counter() - started
    return {
        "module": reference,
        "renders": renders,
        "concurrency": concurrency,
        "cold_renders_per_second": renders / cold_seconds,
        "cold_p50_ms": percentile(latencies, 0.50) * 1000,
        "cold_p95_ms": percentile(latencies, 0.95) * 1000,
        "cached_renders_per_second": cached_rounds / cached_seconds,
        "cache_hits": renderer.cache.hits,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=60)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--json", help="also write the figures to this file")
    arguments = parser.parse_args()
    results = [asyncio.run(measure(m, arguments.renders, arguments.concurrency)) for m in MODULES]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print("render = cue evaluation of #Render + graph checks + policy/defaults (a second cue run)")
    header = f"{'module':<28} {'cold/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'cached/s':>10}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r['module']:<28} {r['cold_renders_per_second']:>8.1f} {r['cold_p50_ms']:>8.1f} "
            f"{r['cold_p95_ms']:>8.1f} {r['cached_renders_per_second']:>10.0f}"
        )
    if arguments.json:
        with open(arguments.json, "w") as handle:
            json.dump({"results": results}, handle, indent=2)


if __name__ == "__main__":
    main()
