"""Readiness predicates and the defaults by kind, on objects shaped as the API server returns
them (the integration tests in tests/integration/test_executor_paths.py run them against the
real controllers)."""

from __future__ import annotations

from typing import Any

from pequod.executor.readiness import evaluate


def stateful_set(
    *,
    replicas: int = 2,
    ready: int = 2,
    updated: int = 2,
    generation: int = 2,
    observed: int = 2,
    strategy: dict[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"replicas": replicas}
    if strategy is not None:
        spec["updateStrategy"] = strategy
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db", "generation": generation},
        "spec": spec,
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "readyReplicas": ready,
            "updatedReplicas": updated,
        },
    }


def test_stateful_set_is_ready_when_every_replica_is_ready_on_the_latest_revision() -> None:
    result = evaluate(stateful_set(), [])
    assert result.ready, result.details
    assert result.details == "2/2 ready, 2/2 updated"


def test_stateful_set_waits_for_its_controller_and_its_replicas() -> None:
    assert not evaluate(stateful_set(observed=1), []).ready
    waiting = evaluate(stateful_set(ready=1), [])
    assert not waiting.ready
    assert waiting.details == "1/2 ready, 2/2 updated"
    # No status at all (just created): not ready, and no crash on the missing fields.
    bare = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"generation": 1}}
    assert not evaluate(bare, []).ready


def test_stateful_set_pods_of_the_previous_revision_do_not_count() -> None:
    # The spec changed; the controller saw it but has updated no pod yet: the old pods are
    # still ready, and a dependent must not go ahead against the previous revision.
    rolling = evaluate(stateful_set(updated=0), [])
    assert not rolling.ready
    assert rolling.details == "2/2 ready, 0/2 updated"
    # A partition keeps the pods below it on the previous revision on purpose.
    partitioned = {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}
    assert evaluate(stateful_set(updated=1, strategy=partitioned), []).ready
    assert not evaluate(stateful_set(updated=0, strategy=partitioned), []).ready
    # OnDelete: pods change only when someone deletes them; readiness is all there is.
    assert evaluate(stateful_set(updated=0, strategy={"type": "OnDelete"}), []).ready


def job(*conditions: tuple[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate"},
        "status": {
            "conditions": [
                {"type": kind, "status": status, "message": f"{kind} is {status}"}
                for kind, status in conditions
            ]
        },
    }


def test_job_is_ready_when_complete_and_never_when_failed() -> None:
    assert not evaluate(job(), []).ready
    assert evaluate(job(), []).details == "no Complete condition yet"
    assert evaluate(job(("SuccessCriteriaMet", "True"), ("Complete", "True")), []).ready
    failed = evaluate(job(("Failed", "True")), [])
    assert not failed.ready
    assert failed.details.startswith("job failed")


def test_claim_is_ready_when_bound() -> None:
    claim: dict[str, Any] = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "status": {}}
    assert evaluate(claim, []).details == "phase Pending"
    claim["status"]["phase"] = "Bound"
    assert evaluate(claim, []).ready


def test_kinds_without_a_default_are_ready_once_they_exist() -> None:
    assert evaluate({"apiVersion": "v1", "kind": "ConfigMap"}, []).ready


def test_condition_match_defaults_to_true_and_compares_the_status() -> None:
    obj = {"status": {"conditions": [{"type": "Synced", "status": "False", "message": "no"}]}}
    assert not evaluate(obj, [{"type": "ConditionMatch", "conditionType": "Synced"}]).ready
    assert evaluate(
        obj, [{"type": "ConditionMatch", "conditionType": "Synced", "status": "False"}]
    ).ready
    assert not evaluate(obj, [{"type": "ConditionMatch", "conditionType": "Missing"}]).ready


def test_every_predicate_must_hold() -> None:
    obj: dict[str, Any] = {
        "kind": "Gadget",
        "data": {"ready": "yes"},
        "status": {"conditions": [{"type": "Synced", "status": "True"}]},
    }
    both = [
        {"type": "ConditionMatch", "conditionType": "Synced"},
        {"type": "CEL", "expression": "object.data.ready == 'yes'"},
    ]
    assert evaluate(obj, both).ready
    obj["data"]["ready"] = "no"
    assert not evaluate(obj, both).ready
