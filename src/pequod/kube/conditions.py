"""metav1.Condition lists: set one, keeping lastTransitionTime while its status is unchanged."""

from __future__ import annotations

from typing import Any

from pequod.clock import timestamp


def set_condition(
    conditions: list[dict[str, Any]],
    type_: str,
    status: bool | str,
    reason: str,
    message: str,
    observed_generation: int | None = None,
) -> list[dict[str, Any]]:
    """A copy of ``conditions`` with ``type_`` set."""
    value = status if isinstance(status, str) else ("True" if status else "False")
    previous = next((c for c in conditions if c.get("type") == type_), None)
    condition: dict[str, Any] = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message[:32000],
        "lastTransitionTime": previous["lastTransitionTime"]
        if previous and previous.get("status") == value and "lastTransitionTime" in previous
        else timestamp(),
    }
    if observed_generation is not None:
        condition["observedGeneration"] = observed_generation
    return [c for c in conditions if c.get("type") != type_] + [condition]


def condition(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def is_true(conditions: list[dict[str, Any]], type_: str) -> bool:
    found = condition(conditions, type_)
    return bool(found and found.get("status") == "True")
