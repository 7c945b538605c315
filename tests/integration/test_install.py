"""The production install on a control plane of its own: the kustomization applies, the
Deployment passes the namespace's "restricted" Pod Security and becomes Available, and two
operator replicas running with the ServiceAccount's token (not an admin) elect a leader, do
the work, hand over when the leader is killed, and release the Lease when stopped. The
leader's /metrics then has every metric docs/operations.md documents, and its probes answer."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from pequod.controlplane import ControlPlane
from tests.operator_harness import (
    REPOSITORY,
    Kubectl,
    OperatorProcess,
    condition,
    service_account_kubeconfig,
    wait_for,
)

pytestmark = [pytest.mark.cluster, pytest.mark.workloads]

MANIFESTS = REPOSITORY / "manifests"
LEADER_FLAGS = (
    "--leader-elect",
    "--leader-election-lease-duration=4",
    "--leader-election-renew-deadline=3",
    "--leader-election-retry-period=0.5",
    # A client-side rate limit, as a production install might set it.
    "--kube-api-qps=200",
    "--kube-api-burst=50",
)


def documented_metrics() -> list[str]:
    text = (REPOSITORY / "docs" / "operations.md").read_text()
    return re.findall(r"^\| `([a-z_]+)` \| (?:gauge|counter|histogram) ", text, re.MULTILINE)


# Documented metrics whose series exist only once what they count has happened, which it does
# not in this test: no retry, no reconcile that raises, only embedded modules. Each must still
# be declared (a "# TYPE" line). Every other documented metric needs a sample.
ONLY_ONCE_IT_HAPPENS = frozenset(
    {
        "workqueue_retries_total",
        "controller_runtime_reconcile_errors_total",
        "pequod_module_cache_events_total",
        "pequod_module_fetch_total",
    }
)
CONTROLLERS = ("transform", "instance", "resourcegraph")


def metric_samples(text: str) -> list[Sample]:
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def total(samples: list[Sample], metric: str, /, **labels: str) -> float:
    """The sum of the samples called ``metric`` that carry ``labels``."""
    return sum(
        s.value
        for s in samples
        if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items())
    )


def check_documented_metrics(text: str) -> None:
    documented = documented_metrics()
    assert "pequod_reconcile_total" in documented, documented
    samples = metric_samples(text)
    sampled = {s.name for s in samples}
    missing = [
        m
        for m in documented
        if m not in ONLY_ONCE_IT_HAPPENS
        and not {m, f"{m}_bucket", f"{m}_count", f"{m}_sum"} & sampled
    ]
    assert not missing, f"documented metrics without a sample: {missing}"
    undeclared = [m for m in ONLY_ONCE_IT_HAPPENS if f"# TYPE {m} " not in text]
    assert not undeclared, f"documented metrics not declared: {undeclared}"
    assert set(ONLY_ONCE_IT_HAPPENS) <= set(documented)

    # The work of this test shows in the figures: a Transform, an instance and its graph
    # reconciled, cue run, objects applied and managed, the lease written.
    happened = {
        f"{name}[{controller}]": total(samples, name, controller=controller)
        for controller in CONTROLLERS
        for name in (
            "pequod_reconcile_total",
            "pequod_reconcile_duration_seconds_count",
            "controller_runtime_reconcile_total",
            "controller_runtime_reconcile_time_seconds_count",
        )
    }
    happened |= {
        f"{name}[{queue}]": total(samples, name, name=queue)
        for queue in CONTROLLERS
        for name in (
            "workqueue_adds_total",
            "workqueue_queue_duration_seconds_count",
            "workqueue_work_duration_seconds_count",
        )
    }
    happened |= {
        name: total(samples, name)
        for name in (
            "pequod_cue_eval_duration_seconds_count",
            "pequod_render_cache_misses_total",
            "pequod_render_batch_size_count",
            "pequod_dag_execution_duration_seconds_count",
            "pequod_apply_duration_seconds_count",
            "pequod_resources_managed",
            "pequod_api_requests_total",
            "pequod_leader_election_lease_updates_total",
        )
    }
    happened["pequod_apply_total[success]"] = total(samples, "pequod_apply_total", result="success")
    happened["pequod_dag_nodes[Ready]"] = total(samples, "pequod_dag_nodes", state="Ready")
    not_happened = {k: v for k, v in happened.items() if not v > 0}
    assert not not_happened, f"metrics that do not show the work done: {not_happened}"
    assert total(samples, "pequod_leader") == 1.0


def test_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"]
    files = sorted(
        str(p.relative_to(MANIFESTS))
        for p in MANIFESTS.rglob("*.yaml")
        if p.name != "kustomization.yaml"
    )
    assert sorted(listed) == files


def test_deployment_is_hardened() -> None:
    deployment = yaml.safe_load((MANIFESTS / "operator" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert "--leader-elect" in container["args"]


@pytest.fixture(scope="module")
def install_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    plane = ControlPlane(tmp_path_factory.mktemp("install-plane"))
    plane.start()
    try:
        plane.start_workloads()
        yield plane
    finally:
        plane.stop()


def lease(kubectl: Kubectl) -> dict[str, Any]:
    found: dict[str, Any] = kubectl.get("lease", "pequod-operator", "-n", "pequod-system") or {}
    return found.get("spec") or {}


def holder_pid(kubectl: Kubectl) -> int | None:
    identity = lease(kubectl).get("holderIdentity") or ""
    return int(identity.rsplit("_", 1)[1]) if "_" in identity else None


def instance_ready(kubectl: Kubectl, name: str) -> None:
    def ready() -> bool:
        found = kubectl.get("webservice", name, "-n", "default")
        ready_condition = condition(found, "Ready")
        return bool(ready_condition and ready_condition["status"] == "True")

    wait_for(ready, within=120, what=f"WebService {name} Ready")


def cue_runs(metrics: dict[str, float]) -> float:
    return sum(
        v for k, v in metrics.items() if k.startswith("pequod_cue_eval_duration_seconds_count")
    )


def writes(metrics: dict[str, float]) -> float:
    """Writes to the API server, the leader's Lease renewals aside."""
    return sum(
        v
        for k, v in metrics.items()
        if k.startswith("pequod_api_requests_total")
        and any(f'verb="{verb}"' in k for verb in ("create", "apply", "patch", "delete"))
    ) - metrics.get("pequod_leader_election_lease_updates_total", 0.0)


def queues_idle(operator: OperatorProcess) -> bool:
    metrics = operator.metrics()
    return all(
        v == 0
        for k, v in metrics.items()
        if k.startswith(("workqueue_depth", "workqueue_unfinished_work_seconds"))
    )


def web_service(name: str) -> str:
    return (
        "apiVersion: platform.pequod.io/v1alpha1\nkind: WebService\n"
        f"metadata:\n  name: {name}\n  namespace: default\n"
        "spec:\n  image: docker.io/nginxinc/nginx-unprivileged:1.27\n  replicas: 1\n"
    )


def test_install_run_as_the_service_account_with_leader_election(
    install_plane: ControlPlane, tmp_path: Path
) -> None:
    kubectl = Kubectl(install_plane)
    kubectl.run("apply", "--server-side", "-k", str(MANIFESTS))
    kubectl.run(
        "wait",
        "--for=condition=Available",
        "deployment/pequod",
        "-n",
        "pequod-system",
        "--timeout=120s",
    )
    kubeconfig = service_account_kubeconfig(install_plane, kubectl, tmp_path / "sa.kubeconfig")
    replicas = [
        OperatorProcess(install_plane, tmp_path / f"replica-{i}.log", kubeconfig=kubeconfig)
        for i in range(2)
    ]
    try:
        replicas[0].start(*LEADER_FLAGS, "--log-format=json")
        replicas[1].start(*LEADER_FLAGS, ready_line="waiting for the leader lease")
        by_pid = {r.process.pid: r for r in replicas if r.process is not None}
        leader = by_pid[wait_for(lambda: holder_pid(kubectl), what="a lease holder")]
        standby = next(r for r in replicas if r is not leader)
        assert leader is replicas[0]

        kubectl.run("apply", "-f", str(REPOSITORY / "examples" / "transforms.yaml"))
        kubectl.run("wait", "--for=condition=Ready", "transform/webservice", "--timeout=120s")
        kubectl.apply(web_service("first"))
        instance_ready(kubectl, "first")

        # The Transform's count of instances on its module version follows the instance's
        # status within a second (one write for a burst): the cluster is unchanged after it.
        def versions() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = kubectl.get("transform", "webservice")["status"].get(
                "moduleVersions"
            ) or [{}]
            return found

        wait_for(lambda: versions()[0].get("instances") == 1, what="the version's count")

        # A full resync (SIGHUP) of an unchanged cluster costs no cue run and no write.
        before = leader.metrics()
        assert leader.process is not None
        leader.process.send_signal(signal.SIGHUP)
        wait_for(lambda: "full resync" in leader.log(), what="resync logged")
        wait_for(lambda: queues_idle(leader), what="queues idle after the resync")
        after = leader.metrics()
        assert after["pequod_reconcile_total"] > before["pequod_reconcile_total"]
        assert cue_runs(after) == cue_runs(before)
        assert writes(after) == writes(before), {
            k: (before.get(k), v)
            for k, v in after.items()
            if k.startswith("pequod_api_requests_total") and before.get(k) != v
        }

        # Events tell the story on the instance and on its graph.
        events = kubectl.get("events", "-n", "default")["items"]
        reasons = {(e["involvedObject"]["kind"], e["reason"]) for e in events}
        assert {("WebService", "Rendered"), ("ResourceGraph", "Ready")} <= reasons
        assert any(
            e["involvedObject"]["kind"] == "ResourceGraph" and "applied " in e["message"]
            for e in events
        ), events

        # Everything docs/operations.md documents is exported after real reconciles, with
        # samples, and the ones that count this work show it.
        status, text = leader.get("/metrics")
        assert status == 200
        check_documented_metrics(text)
        assert leader.get("/healthz", leader.health_port)[0] == 200
        readiness = leader.get("/readyz", leader.health_port)
        assert readiness[0] == 200, readiness[1]
        assert standby.get("/readyz", standby.health_port)[0] == 200
        # JSON log lines carry the reconcile's context.
        lines = [json.loads(line) for line in leader.log().splitlines() if line.startswith("{")]
        assert any(
            line.get("controller") == "instance"
            and line.get("kind") == "WebService"
            and line.get("name") == "first"
            and line.get("reconcile_id")
            for line in lines
        )

        # The leader dies without releasing: the standby takes over once the lease expires.
        transitions = int(lease(kubectl).get("leaseTransitions") or 0)
        leader.stop(signal.SIGKILL)
        assert standby.process is not None
        wait_for(
            lambda: holder_pid(kubectl) == standby.process.pid,  # type: ignore[union-attr]
            within=30,
            what="the standby holding the lease",
        )
        assert int(lease(kubectl).get("leaseTransitions") or 0) == transitions + 1
        kubectl.apply(web_service("second"))
        instance_ready(kubectl, "second")

        # A clean stop releases the lease.
        assert standby.stop(signal.SIGTERM) == 0
        assert not lease(kubectl).get("holderIdentity")
        assert "leader lease released" in standby.log()
    finally:
        for replica in replicas:
            replica.stop(signal.SIGKILL)
