"""The ResourceGraph executor on the full control plane (controller-manager, scheduler, kwok):
dependency order, readiness, updates, pruning, failures confined to their branch, ordered
deletion, recovery after the operator is killed, drift, and collisions."""

from __future__ import annotations

import datetime
import signal
import time
from typing import Any

import pytest

from pequod.controlplane import ControlPlane
from tests.operator_harness import (
    Kubectl,
    OperatorProcess,
    condition,
    inline_transform,
    ready_transform,
    wait_for,
)

pytestmark = [pytest.mark.cluster, pytest.mark.workloads]


def timestamp(value: str) -> datetime.datetime:
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def apps(workload_control_plane: ControlPlane, kubectl: Kubectl, operator: OperatorProcess) -> None:
    for name, ref, kind, short in (
        ("app-service", "webservice@1.1.0", "AppService", "aps"),
        ("app-database", "database@1.0.0", "AppDatabase", "adb"),
    ):
        kubectl.apply(
            "apiVersion: platform.pequod.io/v1alpha1\nkind: Transform\n"
            f"metadata:\n  name: {name}\nspec:\n  cueRef: {{type: embedded, ref: {ref}}}\n"
            f"  kind: {kind}\n  shortNames: [{short}]\n"
            "  policies: [{type: embedded, ref: policy/defaults}]\n"
            "  instancePlatformRefs: [{type: embedded, ref: webservice@1.0.0}]\n"
        )
    for name in ("app-service", "app-database"):
        ready_transform(kubectl, name)


def instance_ready(
    kubectl: Kubectl, kind: str, name: str, namespace: str, within: float = 120
) -> Any:
    def ready() -> Any:
        found = kubectl.get(kind, name, "-n", namespace)
        ready_condition = condition(found, "Ready")
        return found if ready_condition and ready_condition["status"] == "True" else None

    return wait_for(ready, within=within, what=f"{kind} {name} Ready")


def app_service(namespace: str, name: str, spec: str) -> str:
    return (
        "apiVersion: platform.pequod.io/v1alpha1\nkind: AppService\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n{spec}"
    )


def test_webservice_applies_in_order_updates_upgrades_and_prunes(
    apps: None, kubectl: Kubectl, namespace: str
) -> None:
    kubectl.apply(
        app_service(
            namespace,
            "web",
            "  image: ghcr.io/acme/web:1.0\n"
            "  platformRef: {type: embedded, ref: webservice@1.0.0}\n",
        )
    )
    ready = instance_ready(kubectl, "appservice", "web", namespace)
    assert ready["status"]["readyNodes"] == ready["status"]["totalNodes"] == 2
    listing = kubectl.run("get", "aps", "-n", namespace).stdout.splitlines()
    assert listing[0].split()[:3] == ["NAME", "READY", "PHASE"]
    assert listing[1].split()[1:3] == ["True", "Ready"]

    deployment = kubectl.get("deployment", "web", "-n", namespace)
    service = kubectl.get("service", "web", "-n", namespace)
    available = condition(deployment, "Available")
    assert available is not None
    # The Service depends on the Deployment: it was created only once that was Available.
    assert timestamp(service["metadata"]["creationTimestamp"]) >= timestamp(
        available["lastTransitionTime"]
    )
    graph = kubectl.get("resourcegraph", "appservice-web", "-n", namespace)
    assert [n["phase"] for n in graph["status"]["nodes"]] == ["Ready", "Ready"]
    assert {e["kind"] for e in graph["status"]["inventory"]} == {"Deployment", "Service"}
    assert all(e["uid"] for e in graph["status"]["inventory"])

    # Unpinned: the Transform's module, 1.1.0, adds a PodDisruptionBudget; replicas change.
    kubectl.apply(app_service(namespace, "web", "  image: ghcr.io/acme/web:1.0\n  replicas: 3\n"))
    wait_for(lambda: kubectl.get("pdb", "web", "-n", namespace), what="PodDisruptionBudget")
    wait_for(
        lambda: kubectl.get("deployment", "web", "-n", namespace)["spec"]["replicas"] == 3,
        what="replicas 3",
    )
    instance_ready(kubectl, "appservice", "web", namespace)

    # One replica: the PodDisruptionBudget leaves the graph and is pruned.
    kubectl.apply(app_service(namespace, "web", "  image: ghcr.io/acme/web:1.0\n  replicas: 1\n"))
    wait_for(lambda: kubectl.get("pdb", "web", "-n", namespace) is None, what="PDB pruned")
    assert kubectl.get("service", "web", "-n", namespace) is not None


def test_database_statefulset_waits_for_secret_and_claim(
    apps: None, kubectl: Kubectl, namespace: str
) -> None:
    # The claim is bound by the control plane's default StorageClass (hostPath provisioner).
    kubectl.apply(
        "apiVersion: platform.pequod.io/v1alpha1\nkind: AppDatabase\n"
        f"metadata:\n  name: orders\n  namespace: {namespace}\nspec:\n  storage: 1Gi\n"
    )
    instance_ready(kubectl, "appdatabase", "orders", namespace, within=180)
    secret = kubectl.get("secret", "orders", "-n", namespace)
    claim = kubectl.get("pvc", "orders", "-n", namespace)
    stateful_set = kubectl.get("statefulset", "orders", "-n", namespace)
    created = timestamp(stateful_set["metadata"]["creationTimestamp"])
    assert created >= timestamp(secret["metadata"]["creationTimestamp"])
    assert created >= timestamp(claim["metadata"]["creationTimestamp"])
    assert kubectl.get("service", "orders", "-n", namespace) is not None
    assert claim["status"]["phase"] == "Bound"
    assert claim["spec"]["storageClassName"] == "standard"


BRANCHES = """package branches

#Input: {}

#Render: {
	input: {
		metadata: {name: string, namespace: string, labels?: {...}, annotations?: {...}}
		spec: #Input
	}
	output: nodes: [
		{id: "good", object: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "good"}},
		{
			id: "bad"
			object: {
				apiVersion: "v1"
				kind:       "Service"
				metadata: name: "bad"
				spec: ports: [{port: 99999}]
			}
		},
		{
			id: "after-bad"
			dependsOn: ["bad"]
			object: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "after-bad"}
		},
		{
			id: "kept"
			deletionPolicy: "Orphan"
			object: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "kept"}
		},
		{
			id: "taken"
			object: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "taken"}
		},
	]
}
"""


def test_failures_stay_in_their_branch_and_deletion_orphans_what_asks(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    kubectl.apply(
        "apiVersion: v1\nkind: ConfigMap\n"
        f"metadata:\n  name: taken\n  namespace: {namespace}\ndata:\n  owner: someone-else\n"
    )
    kubectl.apply(inline_transform("branches", BRANCHES, "  kind: Branches\n"))
    ready_transform(kubectl, "branches")
    kubectl.apply(
        "apiVersion: platform.pequod.io/v1alpha1\nkind: Branches\n"
        f"metadata:\n  name: b\n  namespace: {namespace}\nspec: {{}}\n"
    )

    def settled() -> Any:
        graph = kubectl.get("resourcegraph", "branches-b", "-n", namespace)
        nodes = {n["id"]: n for n in ((graph or {}).get("status") or {}).get("nodes") or []}
        return (
            nodes
            if nodes.get("good", {}).get("phase") == "Ready"
            and nodes.get("after-bad", {}).get("phase") == "Blocked"
            and nodes.get("taken", {}).get("phase") == "Error"
            else None
        )

    nodes = wait_for(settled, what="graph settled")
    assert nodes["bad"]["phase"] == "Error"
    assert "99999" in nodes["bad"]["lastError"]
    assert nodes["after-bad"]["lastError"] == "blocked by bad"
    assert "not managed by Pequod" in nodes["taken"]["lastError"]
    assert nodes["kept"]["phase"] == "Ready"
    taken = kubectl.get("configmap", "taken", "-n", namespace)
    assert taken["data"] == {"owner": "someone-else"}
    assert "platform.pequod.io/instance-uid" not in (taken["metadata"].get("labels") or {})
    instance = kubectl.get("branches", "b", "-n", namespace)
    assert instance["status"]["phase"] == "Failed"

    kubectl.run("delete", "branches", "b", "-n", namespace, "--timeout=90s")
    assert kubectl.get("configmap", "good", "-n", namespace) is None
    assert kubectl.get("configmap", "kept", "-n", namespace) is not None
    assert kubectl.get("configmap", "taken", "-n", namespace) is not None
    assert kubectl.get("resourcegraph", "branches-b", "-n", namespace) is None
    kubectl.run("delete", "transform", "branches", "--timeout=60s")


def test_drift_is_corrected_and_a_killed_operator_converges(
    apps: None, kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    kubectl.apply(
        app_service(namespace, "drift", "  image: ghcr.io/acme/drift:1.0\n  replicas: 2\n")
    )
    wait_for(lambda: kubectl.get("deployment", "drift", "-n", namespace), what="deployment")
    # Killed in the middle of the graph (the Deployment applied, the Service not yet).
    operator.stop(signal.SIGKILL)
    time.sleep(1)
    operator.start()
    instance_ready(kubectl, "appservice", "drift", namespace)
    assert len(kubectl.get("deployments", "-n", namespace)["items"]) == 1

    kubectl.run("scale", "deployment", "drift", "-n", namespace, "--replicas=5")
    kubectl.run(
        "label",
        "deployment",
        "drift",
        "-n",
        namespace,
        "app.kubernetes.io/managed-by=someone",
        "--overwrite",
    )
    wait_for(
        lambda: (
            (d := kubectl.get("deployment", "drift", "-n", namespace))["spec"]["replicas"] == 2
            and d["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "pequod"
        ),
        what="drift corrected",
    )
    metrics = operator.metrics()
    assert metrics["pequod_drift_corrections_total"] >= 1
    assert metrics['pequod_apply_total{result="success"}'] >= 1
    assert metrics['pequod_apply_total{result="conflict"}'] >= 1


def test_dry_run_validates_and_reports_without_applying(
    apps: None, kubectl: Kubectl, namespace: str
) -> None:
    def planned() -> Any:
        graph = kubectl.get("resourcegraph", "appservice-plan", "-n", namespace)
        status = (graph or {}).get("status") or {}
        return status if status.get("phase") == "DryRun" else None

    manifest = app_service(namespace, "plan", "  image: ghcr.io/acme/plan:1.0\n  replicas: 2\n")
    dry_run = manifest.replace(
        "namespace:", "annotations: {pequod.io/dry-run: 'true'}\n  namespace:"
    )
    kubectl.apply(dry_run)
    status = wait_for(planned, what="dry run planned")
    nodes = {n["id"]: n for n in status["nodes"]}
    assert {n["phase"] for n in nodes.values()} == {"Planned"}
    assert {n["readyDetails"] for n in nodes.values()} == {"would create"}
    assert kubectl.get("deployment", "plan", "-n", namespace) is None
    instance = wait_for(
        lambda: (
            (i := kubectl.get("appservice", "plan", "-n", namespace))["status"].get("phase")
            == "DryRun"
            and i
        ),
        what="instance DryRun",
    )
    assert condition(instance, "Ready")["reason"] == "GraphDryRun"  # type: ignore[index]

    kubectl.apply(manifest)  # the annotation gone: applied for real
    instance_ready(kubectl, "appservice", "plan", namespace)

    kubectl.apply(dry_run.replace("replicas: 2", "replicas: 3"))
    status = wait_for(
        lambda: (
            (s := planned())
            and any("spec.replicas" in n.get("readyDetails", "") for n in s["nodes"])
            and s
        ),
        what="dry run of an update",
    )
    details = {n["id"]: n["readyDetails"] for n in status["nodes"]}
    assert details["deployment"] == "would update: spec.replicas", details
    assert details["service"] == "up to date"
    assert kubectl.get("deployment", "plan", "-n", namespace)["spec"]["replicas"] == 2


LIFECYCLE = """package lifecycle

#Input: {
	value: string | *"one"
	extra: bool | *false
	slow:  bool | *false
}

#Render: {
	input: {
		metadata: {name: string, namespace: string, labels?: {...}, annotations?: {...}}
		spec: #Input
	}
	output: nodes: [
		{id: "a", object: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "a"}},
		{
			id: "b"
			dependsOn: ["a"]
			object: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "b"}
		},
		{
			id: "c"
			dependsOn: ["b"]
			// Held on deletion until the test lets it go: shows that b and a wait for it.
			object: {
				apiVersion: "v1"
				kind:       "ConfigMap"
				metadata: {name: "c", finalizers: ["example.com/hold"]}
			}
		},
		{
			id: "once"
			applyPolicy: mode: "CreateOnly"
			object: {
				apiVersion: "v1"
				kind:       "ConfigMap"
				metadata: name: "once"
				data: value: input.spec.value
			}
		},
		if input.spec.extra {
			{
				id: "keep-me"
				object: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "keep-me"}
			}
		},
		if input.spec.extra {
			{
				id: "orphan"
				deletionPolicy: "Orphan"
				object: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "orphan"}
			}
		},
		if input.spec.extra {
			{id: "pruned", object: {apiVersion: "v1", kind: "ConfigMap", metadata: name: "pruned"}}
		},
		if input.spec.slow {
			{
				id: "never"
				readyWhen: [{type: "CEL", expression: "object.data.ready == 'yes'"}]
				object: {
					apiVersion: "v1"
					kind:       "ConfigMap"
					metadata: name: "never"
					data: ready: "no"
				}
			}
		},
	]
}
"""


def lifecycle(namespace: str, spec: str) -> str:
    return (
        "apiVersion: platform.pequod.io/v1alpha1\nkind: Lifecycle\n"
        f"metadata:\n  name: l\n  namespace: {namespace}\nspec:\n{spec}"
    )


def test_create_only_prune_rules_timeout_and_deletion_order(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    kubectl.apply(inline_transform("lifecycle", LIFECYCLE, "  kind: Lifecycle\n"))
    ready_transform(kubectl, "lifecycle")
    kubectl.apply(lifecycle(namespace, "  extra: true\n"))
    instance_ready(kubectl, "lifecycle", "l", namespace)

    # CreateOnly: a new value does not update the object.
    kubectl.apply(lifecycle(namespace, "  extra: true\n  value: two\n"))
    wait_for(
        lambda: (
            (kubectl.get("resourcegraph", "lifecycle-l", "-n", namespace) or {})["spec"]["nodes"][
                3
            ]["object"]["data"]["value"]
            == "two"
        ),
        what="graph with the new value",
    )
    instance_ready(kubectl, "lifecycle", "l", namespace)
    assert kubectl.get("configmap", "once", "-n", namespace)["data"] == {"value": "one"}

    # Leaving the graph: pruned, unless Orphan or annotated pequod.io/prune=disabled.
    kubectl.run("annotate", "configmap", "keep-me", "-n", namespace, "pequod.io/prune=disabled")
    kubectl.apply(lifecycle(namespace, "  value: two\n"))
    wait_for(lambda: kubectl.get("configmap", "pruned", "-n", namespace) is None, what="pruned")
    assert kubectl.get("configmap", "orphan", "-n", namespace) is not None
    assert kubectl.get("configmap", "keep-me", "-n", namespace) is not None

    # A node that never becomes ready turns Error after the ready timeout, with the reason.
    operator.stop()
    operator.start("--ready-timeout=3")
    try:
        kubectl.apply(lifecycle(namespace, "  value: two\n  slow: true\n"))

        def timed_out() -> Any:
            graph = kubectl.get("resourcegraph", "lifecycle-l", "-n", namespace)
            nodes = {n["id"]: n for n in (graph.get("status") or {}).get("nodes") or []}
            return nodes.get("never") if nodes.get("never", {}).get("phase") == "Error" else None

        never = wait_for(timed_out, what="node Error after the timeout")
        assert "not ready 3 s after it was applied" in never["lastError"]
        assert "object.data.ready == 'yes'" in never["lastError"]
    finally:
        operator.stop()
        operator.start()

    # Deletion goes dependents first and waits for each to be gone.
    kubectl.run("delete", "lifecycle", "l", "-n", namespace, "--wait=false")
    wait_for(
        lambda: (
            (kubectl.get("configmap", "c", "-n", namespace) or {})
            .get("metadata", {})
            .get("deletionTimestamp")
        ),
        what="c being deleted",
    )
    time.sleep(3)
    assert kubectl.get("configmap", "b", "-n", namespace) is not None
    assert kubectl.get("configmap", "a", "-n", namespace) is not None
    kubectl.run(
        "patch",
        "configmap",
        "c",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":null}}',
    )
    wait_for(
        lambda: kubectl.get("lifecycle", "l", "-n", namespace) is None,
        within=90,
        what="instance gone",
    )
    for name in ("a", "b", "c", "never", "once"):
        assert kubectl.get("configmap", name, "-n", namespace) is None, name
    assert kubectl.get("configmap", "orphan", "-n", namespace) is not None
    kubectl.run("delete", "transform", "lifecycle", "--timeout=60s")
