"""Which informer events bring an object back to its own controller."""

from __future__ import annotations

from typing import Any

from pequod.kube.controller import spec_or_metadata_changed
from pequod.kube.informer import InformerEvent


def obj(generation: int = 1, status: str = "a", **metadata: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "x", "generation": generation, **metadata},
        "status": {"s": status},
    }


def test_status_only_updates_are_filtered() -> None:
    assert not spec_or_metadata_changed(InformerEvent("MODIFIED", obj(status="b"), obj()))


def test_spec_metadata_and_other_events_pass() -> None:
    assert spec_or_metadata_changed(InformerEvent("MODIFIED", obj(generation=2), obj()))
    assert spec_or_metadata_changed(
        InformerEvent("MODIFIED", obj(annotations={"pequod.io/dry-run": "true"}), obj())
    )
    assert spec_or_metadata_changed(
        InformerEvent("MODIFIED", obj(deletionTimestamp="2026-01-01T00:00:00Z"), obj())
    )
    for kind in ("ADDED", "DELETED", "RESYNC"):
        assert spec_or_metadata_changed(InformerEvent(kind, obj()))
