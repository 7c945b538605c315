"""Whether a live object already has every field Pequod wants it to have."""

from __future__ import annotations

from typing import Any

_IGNORED_METADATA = {"namespace"}


def contains(live: Any, desired: Any) -> bool:
    """True when every field of ``desired`` has the same value in ``live``.

    Fields the server adds (defaults, status, managedFields) do not matter. Lists must have the
    same length, element by element containing the desired one (servers default fields inside
    list elements, such as a container's imagePullPolicy).
    """
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return False
        return all(key in live and contains(live[key], value) for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return False
        return all(contains(a, b) for a, b in zip(live, desired, strict=True))
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live
    if isinstance(desired, int | float) and isinstance(live, int | float):
        return float(desired) == float(live)
    return bool(live == desired)


def up_to_date(live: dict[str, Any], desired: dict[str, Any]) -> bool:
    """``live`` holds ``desired`` (metadata compared on labels and annotations only)."""
    desired_rest = {k: v for k, v in desired.items() if k not in ("metadata", "status")}
    metadata = desired.get("metadata", {})
    live_metadata = live.get("metadata", {})
    for field in ("labels", "annotations"):
        if not contains(live_metadata.get(field) or {}, metadata.get(field) or {}):
            return False
    return contains(live, desired_rest)


def changed_fields(live: dict[str, Any], desired: dict[str, Any], limit: int = 8) -> list[str]:
    """Paths (``spec.replicas``, ``metadata.labels.team``) where ``live`` lacks what
    ``desired`` sets; at most ``limit`` of them, for a human to read."""
    paths: list[str] = []

    def walk(live_value: Any, desired_value: Any, path: str) -> None:
        if len(paths) >= limit:
            return
        if isinstance(desired_value, dict) and isinstance(live_value, dict):
            for key, value in desired_value.items():
                if path == "metadata" and key not in ("labels", "annotations"):
                    continue
                walk(live_value.get(key), value, f"{path}.{key}" if path else key)
        elif not contains(live_value, desired_value):
            paths.append(path)

    walk(live, {k: v for k, v in desired.items() if k != "status"}, "")
    return paths
