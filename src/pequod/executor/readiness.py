"""Whether a live object is ready, by the node's predicates or a default for its kind."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Readiness:
    ready: bool
    details: str


def _conditions(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c.get("type", ""): c for c in (obj.get("status") or {}).get("conditions") or []}


def condition_match(obj: dict[str, Any], condition_type: str, status: str) -> Readiness:
    found = _conditions(obj).get(condition_type)
    if found is None:
        return Readiness(False, f"no {condition_type} condition yet")
    ok = found.get("status") == status
    return Readiness(
        ok, f"{condition_type}={found.get('status')}: {found.get('message', '')}".strip()
    )


def deployment_available(obj: dict[str, Any]) -> Readiness:
    status = obj.get("status") or {}
    generation = obj.get("metadata", {}).get("generation", 0)
    if status.get("observedGeneration", 0) < generation:
        return Readiness(False, "the deployment controller has not seen the latest spec yet")
    replicas = (obj.get("spec") or {}).get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    available = _conditions(obj).get("Available", {}).get("status") == "True"
    details = f"{status.get('availableReplicas', 0)}/{replicas} available, {updated} updated"
    return Readiness(
        available and updated >= replicas and status.get("availableReplicas", 0) >= replicas,
        details,
    )


def stateful_set_ready(obj: dict[str, Any]) -> Readiness:
    """Every replica ready and, with a rolling update, on the latest revision (up to the
    partition): pods of the previous revision that are still ready do not count."""
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    if status.get("observedGeneration", 0) < obj.get("metadata", {}).get("generation", 0):
        return Readiness(False, "the statefulset controller has not seen the latest spec yet")
    replicas = spec.get("replicas", 1)
    ready = status.get("readyReplicas", 0)
    details = f"{ready}/{replicas} ready"
    strategy = spec.get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return Readiness(ready >= replicas, details)  # OnDelete: pods change when deleted
    partition = (strategy.get("rollingUpdate") or {}).get("partition", 0)
    wanted = max(replicas - partition, 0)
    updated = status.get("updatedReplicas", 0)
    details += f", {updated}/{wanted} updated"
    return Readiness(ready >= replicas and updated >= wanted, details)


def job_complete(obj: dict[str, Any]) -> Readiness:
    conditions = _conditions(obj)
    if conditions.get("Failed", {}).get("status") == "True":
        return Readiness(False, f"job failed: {conditions['Failed'].get('message', '')}")
    return condition_match(obj, "Complete", "True")


def claim_bound(obj: dict[str, Any]) -> Readiness:
    phase = (obj.get("status") or {}).get("phase", "Pending")
    return Readiness(phase == "Bound", f"phase {phase}")


_DEFAULTS = {
    ("apps", "Deployment"): deployment_available,
    ("apps", "StatefulSet"): stateful_set_ready,
    ("batch", "Job"): job_complete,
    ("", "PersistentVolumeClaim"): claim_bound,
}


@functools.cache
def _program(expression: str) -> Any:
    # cel-python is loaded with the first CEL expression: operators whose modules use none
    # do without it.
    import celpy

    environment = celpy.Environment()
    return environment.program(environment.compile(expression))


def cel(obj: dict[str, Any], expression: str) -> Readiness:
    from celpy import celtypes
    from celpy.adapter import json_to_cel

    try:
        result = _program(expression).evaluate({"object": json_to_cel(obj)})
    except Exception as error:  # CEL errors (missing fields...) mean "not ready yet"
        return Readiness(False, f"{expression}: {error}")
    if isinstance(result, celtypes.BoolType):
        return Readiness(bool(result), expression)
    return Readiness(False, f"{expression}: evaluated to {result!r}, not a bool")


def evaluate(obj: dict[str, Any], predicates: list[dict[str, Any]]) -> Readiness:
    """All predicates must hold; without predicates, the default for the object's kind."""
    if not predicates:
        group = obj.get("apiVersion", "").rpartition("/")[0]
        default = _DEFAULTS.get((group, obj.get("kind", "")))
        return default(obj) if default else Readiness(True, "exists")
    details: list[str] = []
    for predicate in predicates:
        kind = predicate["type"]
        if kind == "Exists":
            result = Readiness(True, "exists")
        elif kind == "ConditionMatch":
            result = condition_match(
                obj, predicate["conditionType"], predicate.get("status", "True")
            )
        elif kind == "DeploymentAvailable":
            result = deployment_available(obj)
        else:
            result = cel(obj, predicate["expression"])
        if not result.ready:
            return result
        details.append(result.details)
    return Readiness(True, "; ".join(details))
