"""The operator's Prometheus metrics, in one registry that /metrics serves.

Defined in one place so every layer counts into the same names (see docs/operations.md)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

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
