"""The operator's Prometheus metrics, in one registry that /metrics serves.

Defined in one place so every layer counts into the same names (see docs/operations.md)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

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
