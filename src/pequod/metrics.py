"""The operator's Prometheus metrics, in one registry that /metrics serves.

Defined in one place so every layer counts into the same names (see docs/operations.md)."""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REGISTRY = CollectorRegistry(auto_describe=True)

APPLY_TOTAL = Counter(
    "pequod_apply_total",
    "Server-side applies of rendered objects, by result (success, conflict, error, dry_run).",
    ["result"],
    registry=REGISTRY,
)
DRIFT_CORRECTIONS = Counter(
    "pequod_drift_corrections_total",
    "Objects re-applied because someone else changed fields Pequod manages.",
    registry=REGISTRY,
)
MODULE_CACHE_EVENTS = Counter(
    "pequod_module_cache_events_total",
    "Module cache lookups and evictions, by event (hit, miss, eviction).",
    ["event"],
    registry=REGISTRY,
)
MODULE_CACHE_BYTES = Gauge(
    "pequod_module_cache_bytes",
    "Bytes of modules in the on-disk cache.",
    registry=REGISTRY,
)
MODULE_FETCHES = Counter(
    "pequod_module_fetch_total",
    "Fetches of OCI and Git modules (resolutions and downloads), by source type and result.",
    ["type", "result"],
    registry=REGISTRY,
)

# -- controllers and work queues (the names controller-runtime exports) ------------------------

_FAST = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

WORKQUEUE_DEPTH = Gauge(
    "workqueue_depth", "Keys waiting in a work queue.", ["name"], registry=REGISTRY
)
WORKQUEUE_ADDS = Counter(
    "workqueue_adds_total", "Keys added to a work queue.", ["name"], registry=REGISTRY
)
WORKQUEUE_RETRIES = Counter(
    "workqueue_retries_total", "Rate-limited re-adds after a failure.", ["name"], registry=REGISTRY
)
WORKQUEUE_QUEUE_DURATION = Histogram(
    "workqueue_queue_duration_seconds",
    "Seconds a key waited in the queue before a worker took it.",
    ["name"],
    buckets=_FAST,
    registry=REGISTRY,
)
WORKQUEUE_WORK_DURATION = Histogram(
    "workqueue_work_duration_seconds",
    "Seconds a worker spent on a key.",
    ["name"],
    buckets=_FAST,
    registry=REGISTRY,
)
RECONCILE_TOTAL = Counter(
    "pequod_reconcile_total",
    "Reconciles by controller and result (success, requeue_after, error).",
    ["controller", "result"],
    registry=REGISTRY,
)
RECONCILE_DURATION = Histogram(
    "pequod_reconcile_duration_seconds",
    "Seconds per reconcile, by controller.",
    ["controller"],
    buckets=_FAST,
    registry=REGISTRY,
)
CONTROLLER_RUNTIME_RECONCILE_TOTAL = Counter(
    "controller_runtime_reconcile_total",
    "Reconciles by controller and result (success, requeue_after, error), as controller-runtime.",
    ["controller", "result"],
    registry=REGISTRY,
)
CONTROLLER_RUNTIME_RECONCILE_ERRORS = Counter(
    "controller_runtime_reconcile_errors_total",
    "Reconciles that raised, by controller.",
    ["controller"],
    registry=REGISTRY,
)
CONTROLLER_RUNTIME_RECONCILE_TIME = Histogram(
    "controller_runtime_reconcile_time_seconds",
    "Seconds per reconcile, by controller, as controller-runtime.",
    ["controller"],
    buckets=_FAST,
    registry=REGISTRY,
)

# -- rendering --------------------------------------------------------------------------------

CUE_EVAL_DURATION = Histogram(
    "pequod_cue_eval_duration_seconds",
    "Seconds per cue process, by cue command (export, vet, def).",
    ["command"],
    buckets=_FAST,
    registry=REGISTRY,
)
RENDER_CACHE_HITS = Counter(
    "pequod_render_cache_hits_total", "Renders served from the render cache.", registry=REGISTRY
)
RENDER_CACHE_MISSES = Counter(
    "pequod_render_cache_misses_total", "Renders that had to run cue.", registry=REGISTRY
)
RENDER_BATCH_SIZE = Histogram(
    "pequod_render_batch_size",
    "Instances evaluated by one cue process.",
    buckets=(1, 2, 4, 8, 16, 32, 64),
    registry=REGISTRY,
)

# -- the executor -----------------------------------------------------------------------------

DAG_NODES = Gauge(
    "pequod_dag_nodes",
    "Nodes of all ResourceGraphs, by phase (Pending, Applying, Applied, Ready, Error, Blocked).",
    ["state"],
    registry=REGISTRY,
)
DAG_EXECUTION_DURATION = Histogram(
    "pequod_dag_execution_duration_seconds",
    "Seconds per pass of the executor over one ResourceGraph.",
    buckets=_FAST,
    registry=REGISTRY,
)
APPLY_DURATION = Histogram(
    "pequod_apply_duration_seconds",
    "Seconds per server-side apply of a rendered object.",
    buckets=_FAST,
    registry=REGISTRY,
)
RESOURCES_MANAGED = Gauge(
    "pequod_resources_managed",
    "Objects in the inventories of all ResourceGraphs.",
    registry=REGISTRY,
)
API_REQUESTS = Counter(
    "pequod_api_requests_total",
    "Requests to the API server, by verb (get, list, watch, create, apply, patch, delete).",
    ["verb"],
    registry=REGISTRY,
)
API_CLIENT_THROTTLED_SECONDS = Counter(
    "pequod_api_client_throttled_seconds_total",
    "Seconds requests waited for the client-side rate limit (--kube-api-qps).",
    registry=REGISTRY,
)
LEASE_UPDATES = Counter(
    "pequod_leader_election_lease_updates_total",
    "Writes to the leader election Lease (acquisitions and renewals).",
    registry=REGISTRY,
)
LEADER = Gauge(
    "pequod_leader",
    "1 while this replica holds the leader election lease (or runs without election).",
    registry=REGISTRY,
)


class _WorkInProgress(Collector):
    """workqueue_unfinished_work_seconds and workqueue_longest_running_processor_seconds,
    computed when scraped from the queues that registered themselves."""

    def __init__(self) -> None:
        self.queues: weakref.WeakSet[Any] = weakref.WeakSet()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        unfinished = GaugeMetricFamily(
            "workqueue_unfinished_work_seconds",
            "Seconds of work in progress that has not finished (all workers summed).",
            labels=["name"],
        )
        longest = GaugeMetricFamily(
            "workqueue_longest_running_processor_seconds",
            "Seconds the longest-running worker of a queue has been on its key.",
            labels=["name"],
        )
        now = time.monotonic()
        for queue in list(self.queues):
            started = list(queue.processing_started().values())
            unfinished.add_metric([queue.name], sum(now - s for s in started))
            longest.add_metric([queue.name], max((now - s for s in started), default=0.0))
        yield unfinished
        yield longest


WORK_IN_PROGRESS = _WorkInProgress()
REGISTRY.register(WORK_IN_PROGRESS)
