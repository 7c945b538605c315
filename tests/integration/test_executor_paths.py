"""Executor paths the module-driven tests in test_executor.py do not reach, on the real control
plane with the operator running: a field conflict with another server-side applier (and
``conflictPolicy: Force``) against drift from plain updates, ``ConditionMatch`` readiness,
the readiness defaults of StatefulSet, Job and PersistentVolumeClaim with the real
controllers, and namespace confinement checked again at apply time.

The ResourceGraphs here are written directly with the admin client, as the operator would
write them (the admission policy that keeps everyone else from doing so is not installed in
these tests): that reaches the executor's own checks and defaults, which the render's
checks and defaults would otherwise mask."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pequod.controlplane import ControlPlane
from pequod.sandbox.kubectl import wait_established
from tests.operator_harness import Kubectl, OperatorProcess, wait_for

pytestmark = [pytest.mark.cluster]

TEST_FIELD_MANAGER = "executor-paths-test"


# -- graphs written as the operator would write them ---------------------------------------


def node(
    node_id: str,
    obj: dict[str, Any],
    *,
    depends_on: tuple[str, ...] = (),
    ready_when: list[dict[str, Any]] | None = None,
    conflict_policy: str = "Error",
) -> dict[str, Any]:
    result: dict[str, Any] = {"id": node_id, "object": obj}
    if depends_on:
        result["dependsOn"] = list(depends_on)
    if ready_when is not None:
        result["readyWhen"] = ready_when
    result["applyPolicy"] = {"mode": "Apply", "conflictPolicy": conflict_policy}
    result["deletionPolicy"] = "Delete"
    return result


def config_map(name: str, data: dict[str, str] | None = None, **metadata: str) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}
    obj["metadata"].update(metadata)
    if data is not None:
        obj["data"] = data
    return obj


class Graph:
    """One ResourceGraph in a namespace, written (and rewritten) by the test."""

    def __init__(self, kubectl: Kubectl, namespace: str, name: str) -> None:
        self.kubectl = kubectl
        self.namespace = namespace
        self.name = name
        self.uid = str(uuid.uuid4())

    def write(
        self,
        nodes: list[dict[str, Any]],
        *,
        allowed_namespaces: list[str] | None = None,
        allow_cluster_scoped: bool = False,
    ) -> None:
        graph = {
            "apiVersion": "platform.pequod.io/v1alpha1",
            "kind": "ResourceGraph",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/managed-by": "pequod"},
            },
            "spec": {
                "sourceRef": {
                    "apiVersion": "paths.pequod.test/v1",
                    "kind": "Direct",
                    "name": self.name,
                    "uid": self.uid,
                },
                "metadata": {
                    "name": "direct",
                    "transform": "",
                    "allowedNamespaces": allowed_namespaces or [],
                    "allowClusterScoped": allow_cluster_scoped,
                },
                "nodes": nodes,
                "violations": [],
                "dryRun": False,
            },
        }
        self.kubectl.apply(
            json.dumps(graph),
            "--server-side",
            f"--field-manager={TEST_FIELD_MANAGER}",
            "--force-conflicts",
        )

    def get(self) -> Any:
        return self.kubectl.get("resourcegraph", self.name, "-n", self.namespace)

    def nodes(self) -> dict[str, dict[str, Any]]:
        """The node statuses of a pass over the current spec (empty before there is one)."""
        graph = self.get() or {}
        status = graph.get("status") or {}
        if status.get("observedGeneration") != graph.get("metadata", {}).get("generation"):
            return {}
        return {n["id"]: n for n in status.get("nodes") or []}

    def until(self, probe: Callable[[], Any], what: str, within: float = 60) -> Any:
        """``wait_for``, and the graph's status when it times out."""
        try:
            return wait_for(probe, within=within, what=what)
        except AssertionError as error:
            status = (self.get() or {}).get("status")
            raise AssertionError(f"{error}\nstatus: {json.dumps(status, indent=1)}") from None

    def wait(self, what: str, within: float = 60, **phases: str) -> dict[str, dict[str, Any]]:
        """Waits for a pass in which each named node (keyword: id with - as _) has its phase."""
        wanted = {key.replace("_", "-"): phase for key, phase in phases.items()}

        def settled() -> dict[str, dict[str, Any]] | None:
            nodes = self.nodes()
            if all(nodes.get(i, {}).get("phase") == p for i, p in wanted.items()):
                return nodes
            return None

        result: dict[str, dict[str, Any]] = self.until(settled, what, within)
        return result

    def delete(self) -> None:
        """Deletes the graph and waits for the operator to remove its objects."""
        self.kubectl.run(
            "delete", "resourcegraph", self.name, "-n", self.namespace, "--timeout=90s"
        )


@pytest.fixture
def other_namespace(kubectl: Kubectl) -> Iterator[str]:
    name = f"test-other-{uuid.uuid4().hex[:8]}"
    kubectl.run("create", "namespace", name)
    try:
        yield name
    finally:
        kubectl.run("delete", "namespace", name, "--wait=false")


def get(kubectl: Kubectl, kind: str, name: str, namespace: str | None = None) -> Any:
    return kubectl.get(kind, name, *(("-n", namespace) if namespace else ()))


# -- 1. conflicts with another server-side applier; drift from plain updates ----------------


def fields_of(kubectl: Kubectl, namespace: str, name: str, manager: str) -> dict[str, Any]:
    """The fields of a ConfigMap a manager owns through server-side apply (empty if none)."""
    obj = kubectl.get("configmap", name, "-n", namespace, "--show-managed-fields")
    for entry in obj["metadata"].get("managedFields") or []:
        if entry.get("manager") == manager and entry.get("operation") == "Apply":
            found: dict[str, Any] = entry.get("fieldsV1") or {}
            return found
    return {}


def test_a_co_owner_by_server_side_apply_is_an_error_until_force_while_plain_updates_are_drift(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str
) -> None:
    graph = Graph(kubectl, namespace, "conflicts")
    nodes = [
        node("shared", config_map("shared", {"color": "blue", "size": "m"})),
        node("after", config_map("after"), depends_on=("shared",)),
        node("other", config_map("other")),
    ]
    graph.write(nodes)
    graph.wait("graph Ready", shared="Ready", after="Ready", other="Ready")

    def color() -> str:
        return str(get(kubectl, "configmap", "shared", namespace)["data"]["color"])

    def drift_corrections() -> float:
        return operator.metrics().get("pequod_drift_corrections_total", 0.0)

    def gitops(data: dict[str, str]) -> None:
        kubectl.apply(
            json.dumps(config_map("shared", data, namespace=namespace)),
            "--server-side",
            "--field-manager=gitops",
            "--force-conflicts",
        )

    # A GitOps tool applies a field Pequod does not set: no conflict, both keep their fields.
    gitops({"note": "from git"})

    # Plain updates (a client-side apply, a patch) take the field from Pequod without a
    # conflict; Pequod's apply then conflicts with an updater, not an applier: drift, reverted
    # (the GitOps tool applying other fields of the object does not make it a party to that).
    before = drift_corrections()
    kubectl.apply(
        json.dumps(config_map("shared", {"color": "green"}, namespace=namespace))
    )  # client-side: manager kubectl-client-side-apply, operation Update
    graph.until(lambda: color() == "blue", "client-side apply reverted")
    kubectl.run(
        "patch", "configmap", "shared", "-n", namespace, "-p", '{"data":{"color":"yellow"}}'
    )
    graph.until(lambda: color() == "blue", "patch reverted")
    wait_for(lambda: drift_corrections() >= before + 2, what="two drift corrections counted")
    data = get(kubectl, "configmap", "shared", namespace)["data"]
    assert (data["size"], data["note"]) == ("m", "from git")
    assert graph.nodes()["shared"]["phase"] == "Ready"

    # The GitOps tool takes Pequod's field on purpose: a co-owner by server-side apply.
    # Pequod does not take it back; the node says who holds it and how to take it over.
    gitops({"note": "from git", "color": "red"})
    nodes_now = graph.wait("shared Error", shared="Error", after="Blocked", other="Ready")
    error = nodes_now["shared"]["lastError"]
    assert "field conflict with gitops" in error, error
    assert ".data.color" in error, error
    assert "conflictPolicy: Force" in error, error
    assert nodes_now["after"]["lastError"] == "blocked by shared"
    assert graph.get()["status"]["phase"] == "Failed"
    assert color() == "red"
    assert "f:color" in fields_of(kubectl, namespace, "shared", "gitops")["f:data"]
    assert "f:color" not in fields_of(kubectl, namespace, "shared", "pequod")["f:data"]

    # Other branches go on: a new independent node is applied, a new dependent is not.
    nodes.append(node("late", config_map("late")))
    nodes.append(node("late-after", config_map("late-after"), depends_on=("shared",)))
    graph.write(nodes)
    graph.wait("other branches", shared="Error", late="Ready", late_after="Blocked")
    assert get(kubectl, "configmap", "late", namespace) is not None
    assert get(kubectl, "configmap", "late-after", namespace) is None
    assert color() == "red"

    # conflictPolicy: Force takes the field over: the rendered value, owned by Pequod.
    nodes[0] = node(
        "shared", config_map("shared", {"color": "blue", "size": "m"}), conflict_policy="Force"
    )
    graph.write(nodes)
    graph.wait("Force", shared="Ready", after="Ready", late_after="Ready")
    assert color() == "blue"
    assert "f:color" in fields_of(kubectl, namespace, "shared", "pequod")["f:data"]
    assert "f:color" not in fields_of(kubectl, namespace, "shared", "gitops").get("f:data", {})
    assert get(kubectl, "configmap", "late-after", namespace) is not None
    graph.delete()


# -- 2. ConditionMatch ------------------------------------------------------------------------

GADGET_CRD = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.paths.pequod.test
spec:
  group: paths.pequod.test
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget, listKind: GadgetList}
  versions:
    - name: v1
      served: true
      storage: true
      subresources: {status: {}}
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, x-kubernetes-preserve-unknown-fields: true}
            status: {type: object, x-kubernetes-preserve-unknown-fields: true}
"""


@pytest.fixture(scope="module")
def gadgets(kubectl: Kubectl) -> Iterator[None]:
    """A kind with a status subresource that no controller writes: the test sets conditions."""
    kubectl.apply(GADGET_CRD)
    wait_established(kubectl.plane.kubeconfig, "gadgets.paths.pequod.test")
    try:
        yield
    finally:
        kubectl.run("delete", "crd", "gadgets.paths.pequod.test", "--wait=false")


def gadget(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "paths.pequod.test/v1",
        "kind": "Gadget",
        "metadata": {"name": name},
        "spec": {"size": 1},
    }


def set_condition(
    kubectl: Kubectl, namespace: str, name: str, condition_type: str, status: str
) -> None:
    patch = {
        "status": {
            "conditions": [
                {
                    "type": condition_type,
                    "status": status,
                    "reason": "Test",
                    "message": f"set by the test to {status}",
                    "lastTransitionTime": "2025-01-01T00:00:00Z",
                }
            ]
        }
    }
    kubectl.run(
        "patch",
        "gadget",
        name,
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(patch),
    )


def test_condition_match_waits_for_the_condition_and_its_status(
    operator: OperatorProcess, gadgets: None, kubectl: Kubectl, namespace: str
) -> None:
    graph = Graph(kubectl, namespace, "conditions")
    # Written as a graph, not rendered: "synced" relies on the executor's default status
    # (True), which the render would otherwise have filled in.
    graph.write(
        [
            node(
                "synced",
                gadget("synced"),
                ready_when=[{"type": "ConditionMatch", "conditionType": "Synced"}],
            ),
            node(
                "calm",
                gadget("calm"),
                ready_when=[
                    {"type": "ConditionMatch", "conditionType": "Degraded", "status": "False"}
                ],
            ),
            node("after", config_map("after"), depends_on=("synced", "calm")),
        ]
    )
    nodes = graph.wait("applied, no conditions", synced="Applied", calm="Applied", after="Pending")
    assert nodes["synced"]["readyDetails"] == "no Synced condition yet"
    assert nodes["calm"]["readyDetails"] == "no Degraded condition yet"

    # Synced=False: not what the default (True) asks for. Degraded=True: not what calm asks.
    set_condition(kubectl, namespace, "synced", "Synced", "False")
    set_condition(kubectl, namespace, "calm", "Degraded", "True")

    def seen(node_id: str, details: str) -> Any:
        found = graph.nodes().get(node_id, {})
        return found if details in found.get("readyDetails", "") else None

    synced = graph.until(lambda: seen("synced", "Synced=False"), "Synced=False seen")
    calm = graph.until(lambda: seen("calm", "Degraded=True"), "Degraded=True seen")
    assert synced["phase"] == "Applied", synced
    assert calm["phase"] == "Applied", calm
    assert get(kubectl, "configmap", "after", namespace) is None

    set_condition(kubectl, namespace, "synced", "Synced", "True")
    nodes = graph.wait("synced Ready", synced="Ready", calm="Applied")
    assert nodes["synced"]["readyDetails"] == "Synced=True: set by the test to True"
    assert get(kubectl, "configmap", "after", namespace) is None

    set_condition(kubectl, namespace, "calm", "Degraded", "False")
    graph.wait("all Ready", synced="Ready", calm="Ready", after="Ready")
    assert graph.get()["status"]["phase"] == "Ready"
    graph.delete()


# -- 3. readiness defaults of StatefulSet, Job and PersistentVolumeClaim ---------------------


def held_back(graph: Graph, node_id: str, dependent: str, details: str) -> dict[str, Any]:
    """Waits for a pass that saw ``details`` on a node still not Ready, and checks that its
    dependent was not applied."""

    def seen() -> Any:
        found = graph.nodes().get(node_id, {})
        return found if found.get("readyDetails") == details else None

    found: dict[str, Any] = graph.until(seen, f"{node_id}: {details}")
    assert found["phase"] == "Applied", found
    assert graph.nodes()[dependent]["phase"] == "Pending"
    assert get(graph.kubectl, "configmap", dependent, graph.namespace) is None
    return found


@pytest.mark.workloads
def test_stateful_set_is_ready_when_its_replicas_are(
    workload_control_plane: ControlPlane,
    operator: OperatorProcess,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    labels = {"app": "db"}
    stateful_set = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "replicas": 2,
            "serviceName": "db",
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    # Missing until the test creates it: the ServiceAccount admission refuses
                    # the pods, and the StatefulSet has no ready replica.
                    "serviceAccountName": "db-runner",
                    "containers": [{"name": "db", "image": "registry.example/db:1"}],
                },
            },
        },
    }
    graph = Graph(kubectl, namespace, "stateful")
    graph.write([node("db", stateful_set), node("after", config_map("after"), depends_on=("db",))])
    held_back(graph, "db", "after", "0/2 ready, 0/2 updated")

    kubectl.run("create", "serviceaccount", "db-runner", "-n", namespace)
    nodes = graph.wait("StatefulSet Ready", within=120, db="Ready", after="Ready")
    assert nodes["db"]["readyDetails"] == "2/2 ready, 2/2 updated"
    live = get(kubectl, "statefulset", "db", namespace)
    assert live["status"]["readyReplicas"] == 2
    graph.delete()


@pytest.mark.workloads
def test_job_is_ready_when_complete(
    workload_control_plane: ControlPlane,
    operator: OperatorProcess,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    def job(suspend: bool) -> dict[str, Any]:
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "migrate"},
            "spec": {
                "suspend": suspend,
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "migrate", "image": "registry.example/m:1"}],
                    }
                },
            },
        }

    graph = Graph(kubectl, namespace, "job")
    graph.write(
        [node("migrate", job(True)), node("after", config_map("after"), depends_on=("migrate",))]
    )
    # Suspended: the Job controller says so, and the Job is not complete.
    wait_for(
        lambda: any(
            c["type"] == "Suspended" and c["status"] == "True"
            for c in (get(kubectl, "job", "migrate", namespace) or {})
            .get("status", {})
            .get("conditions", [])
        ),
        what="Job Suspended",
    )
    held_back(graph, "migrate", "after", "no Complete condition yet")

    # Resumed: the Job controller starts its pod, kwok runs it to Succeeded (kwok's default
    # pod-complete stage, for pods owned by a Job), and the Job completes.
    graph.write(
        [node("migrate", job(False)), node("after", config_map("after"), depends_on=("migrate",))]
    )
    nodes = graph.wait("Job Ready", within=120, migrate="Ready", after="Ready")
    assert nodes["migrate"]["readyDetails"].startswith("Complete=True"), nodes["migrate"]
    live = get(kubectl, "job", "migrate", namespace)
    assert live["status"]["succeeded"] == 1
    graph.delete()


@pytest.mark.workloads
def test_claim_is_ready_when_bound(
    workload_control_plane: ControlPlane,
    operator: OperatorProcess,
    kubectl: Kubectl,
    namespace: str,
) -> None:
    volume = f"pv-{namespace}"

    def claim(name: str, **spec: Any) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}},
                **spec,
            },
        }

    graph = Graph(kubectl, namespace, "claims")
    graph.write(
        [
            # Provisioned by the default StorageClass (kube-controller-manager's hostPath
            # provisioner).
            node("provisioned", claim("provisioned")),
            # Bound to a volume that does not exist yet: Pending until the test creates it.
            node("prebound", claim("prebound", storageClassName="", volumeName=volume)),
            node("after", config_map("after"), depends_on=("provisioned", "prebound")),
        ]
    )
    nodes = graph.wait("provisioned claim Ready", within=120, provisioned="Ready")
    assert nodes["provisioned"]["readyDetails"] == "phase Bound"
    held_back(graph, "prebound", "after", "phase Pending")

    try:
        kubectl.apply(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolume",
                    "metadata": {"name": volume},
                    "spec": {
                        "capacity": {"storage": "1Gi"},
                        "accessModes": ["ReadWriteOnce"],
                        "persistentVolumeReclaimPolicy": "Retain",
                        "storageClassName": "",
                        "hostPath": {"path": f"/tmp/hostpath_pv/{volume}"},
                    },
                }
            )
        )
        nodes = graph.wait("claim bound", within=120, prebound="Ready", after="Ready")
        assert nodes["prebound"]["readyDetails"] == "phase Bound"
        assert get(kubectl, "pvc", "prebound", namespace)["spec"]["volumeName"] == volume
        graph.delete()
    finally:
        kubectl.run("delete", "pv", volume, "--wait=false", "--ignore-not-found")


# -- 4. namespace confinement at apply time --------------------------------------------------


def test_objects_go_only_where_the_graph_allows(
    operator: OperatorProcess, kubectl: Kubectl, namespace: str, other_namespace: str
) -> None:
    role = f"pequod-paths-{namespace}"
    cluster_role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": role},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
    }
    nodes = [
        node("home", config_map("home")),
        node("elsewhere", config_map("elsewhere", namespace=other_namespace)),
        node("after-elsewhere", config_map("after-elsewhere"), depends_on=("elsewhere",)),
        node("cluster", cluster_role),
    ]
    graph = Graph(kubectl, namespace, "confined")
    graph.write(nodes)
    found = graph.wait(
        "refused",
        home="Ready",
        elsewhere="Error",
        after_elsewhere="Blocked",
        cluster="Error",
    )
    assert (
        found["elsewhere"]["lastError"]
        == f"namespace {other_namespace!r} is not allowed for this instance"
    )
    assert (
        found["cluster"]["lastError"]
        == "ClusterRole is cluster-scoped and the Transform does not allow that"
    )
    assert get(kubectl, "configmap", "elsewhere", other_namespace) is None
    assert get(kubectl, "configmap", "elsewhere", namespace) is None
    assert get(kubectl, "clusterrole", role) is None
    assert get(kubectl, "configmap", "after-elsewhere", namespace) is None

    # Allowed by the graph (as the Transform's allowedNamespaces and allowClusterScoped say):
    # applied, and removed with the graph.
    graph.write(nodes, allowed_namespaces=[other_namespace], allow_cluster_scoped=True)
    graph.wait("applied", home="Ready", elsewhere="Ready", after_elsewhere="Ready", cluster="Ready")
    elsewhere = get(kubectl, "configmap", "elsewhere", other_namespace)
    assert elsewhere["metadata"]["labels"]["platform.pequod.io/instance-uid"] == graph.uid
    created = get(kubectl, "clusterrole", role)
    assert created["metadata"]["labels"]["platform.pequod.io/instance-uid"] == graph.uid
    assert "namespace" not in created["metadata"]
    inventory = {e["nodeId"]: e for e in graph.get()["status"]["inventory"]}
    assert inventory["elsewhere"]["namespace"] == other_namespace
    assert "namespace" not in inventory["cluster"]

    graph.delete()
    assert get(kubectl, "clusterrole", role) is None
    assert get(kubectl, "configmap", "elsewhere", other_namespace) is None
