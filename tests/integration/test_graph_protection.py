"""An instance's ResourceGraph is the operator's alone. With the admission policy installed, an
identity whom RBAC allows to delete graphs is refused (with a message saying who may and what
to do instead), while deleting the instance and deleting its namespace still remove everything.
Without the policy, a graph deleted under a live instance is replaced, and the new graph adopts
the same objects: nothing is deleted and no pod restarts."""

from __future__ import annotations

import functools
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pequod.api.names import OPERATOR_USERNAME
from pequod.controlplane import ControlPlane
from pequod.sandbox.kubectl import wait_established
from pequod.toolchain.locate import find_binary
from tests.operator_harness import (
    REPOSITORY,
    Kubectl,
    OperatorProcess,
    condition,
    ready_transform,
    service_account_kubeconfig,
    wait_for,
)

pytestmark = [pytest.mark.cluster, pytest.mark.workloads]

MANIFESTS = REPOSITORY / "manifests"
KIND = "GuardedService"
GRAPH_PREFIX = "guardedservice"
TRANSFORM = f"""apiVersion: platform.pequod.io/v1alpha1
kind: Transform
metadata:
  name: guarded-service
spec:
  cueRef: {{type: embedded, ref: webservice@1.1.0}}
  kind: {KIND}
  shortNames: [gsvc]
  policies: [{{type: embedded, ref: policy/defaults}}]
"""
WATCHED = ("deployments", "replicasets", "pods", "services", "poddisruptionbudgets")
"""The kinds of what the instance renders and what the Deployment makes of it."""

DELETER = "graph-janitor"
"""A ServiceAccount whom RBAC allows to delete ResourceGraphs: only the admission policy
stops it."""
DELETER_RBAC = """apiVersion: v1
kind: ServiceAccount
metadata:
  name: {deleter}
  namespace: {namespace}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: resourcegraph-deleter
rules:
  - apiGroups: ["platform.pequod.io"]
    resources: ["resourcegraphs"]
    verbs: ["get", "list", "watch", "delete", "deletecollection"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: resourcegraph-deleter
  namespace: {namespace}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: resourcegraph-deleter
subjects:
  - kind: ServiceAccount
    name: {deleter}
    namespace: {namespace}
"""

HOLD_INSTANCES = f"""apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: hold
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - apiGroups: ["platform.pequod.io"]
        apiVersions: ["*"]
        operations: ["DELETE"]
        resources: ["{KIND.lower()}s"]
  validations:
    - expression: "false"
      message: held for the test
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: hold
spec:
  policyName: hold
  validationActions: ["Deny"]
  matchResources:
    namespaceSelector:
      matchLabels:
        kubernetes.io/metadata.name: "{{namespace}}"
"""


def instance(namespace: str, name: str) -> str:
    return (
        f"apiVersion: platform.pequod.io/v1alpha1\nkind: {KIND}\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\n"
        "spec:\n  image: docker.io/nginxinc/nginx-unprivileged:1.27\n  replicas: 2\n"
    )


def ready_instance(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        found = kubectl.get(KIND.lower(), name, "-n", namespace)
        ready_condition = condition(found, "Ready")
        return found if ready_condition and ready_condition["status"] == "True" else None

    result: dict[str, Any] = wait_for(ready, within=180, what=f"{KIND} {name} Ready")
    return result


def ready_graph(kubectl: Kubectl, namespace: str, name: str, *, not_uid: str = "") -> Any:
    """The instance's graph once it is Ready on its current spec (and is not ``not_uid``)."""

    def ready() -> Any:
        graph = kubectl.get("resourcegraph", f"{GRAPH_PREFIX}-{name}", "-n", namespace)
        if not graph or graph["metadata"]["uid"] == not_uid:
            return None
        status = graph.get("status") or {}
        current = status.get("observedGeneration") == graph["metadata"]["generation"]
        return graph if current and status.get("phase") == "Ready" else None

    return wait_for(ready, within=180, what=f"ResourceGraph {GRAPH_PREFIX}-{name} Ready")


def uids(kubectl: Kubectl, namespace: str, kind: str) -> dict[str, str]:
    return {
        item["metadata"]["name"]: item["metadata"]["uid"]
        for item in kubectl.get(kind, "-n", namespace)["items"]
    }


def inventory(graph: dict[str, Any]) -> list[tuple[str, str, str]]:
    return sorted((e["kind"], e["name"], e["uid"]) for e in graph["status"]["inventory"])


class DeletionWatch:
    """``kubectl get --watch`` on one kind of a namespace, from its current state on: the DELETED
    events it saw."""

    def __init__(self, kubectl: Kubectl, namespace: str, kind: str, path: Path) -> None:
        self.path = path
        self.kind = kind
        self._output = path.open("wb")
        self.process = subprocess.Popen(
            [
                str(find_binary("kubectl")),
                f"--kubeconfig={kubectl.plane.kubeconfig}",
                "get",
                kind,
                "-n",
                namespace,
                "--watch",
                "--output-watch-events",
                "-o",
                "json",
            ],
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )

    def events(self) -> list[dict[str, Any]]:
        text = self.path.read_text(errors="replace")
        decoder = json.JSONDecoder()
        found: list[dict[str, Any]] = []
        position = 0
        while True:
            while position < len(text) and text[position].isspace():
                position += 1
            if position >= len(text):
                return found
            try:
                event, position = decoder.raw_decode(text, position)
            except json.JSONDecodeError:
                return found  # a partly written last event
            found.append(event)

    def listed(self, count: int) -> bool:
        return len(self.events()) >= count

    def deleted(self) -> list[str]:
        return [
            e["object"]["metadata"]["name"] for e in self.events() if e.get("type") == "DELETED"
        ]

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        self._output.close()


@pytest.fixture
def deletion_watches(kubectl: Kubectl, namespace: str, tmp_path: Path) -> Iterator[Any]:
    started: list[DeletionWatch] = []

    def start(expected: dict[str, int]) -> list[DeletionWatch]:
        """Watches ``expected``'s kinds, once each watch has listed that many objects (so it
        is watching before the test goes on)."""
        for kind, count in expected.items():
            watch = DeletionWatch(kubectl, namespace, kind, tmp_path / f"{kind}.watch")
            started.append(watch)
            listed = functools.partial(watch.listed, count)
            wait_for(listed, what=f"the watch on {kind} listing {count}")
        return started

    try:
        yield start
    finally:
        for watch in started:
            watch.stop()


@pytest.fixture
def guarded_service(
    workload_control_plane: ControlPlane, kubectl: Kubectl, operator: OperatorProcess
) -> Iterator[None]:
    kubectl.apply(TRANSFORM)
    ready_transform(kubectl, "guarded-service")
    try:
        yield
    finally:
        kubectl.run("delete", "transform", "guarded-service", "--timeout=120s", check=False)


def test_a_deleted_graph_is_replaced_and_adopts_its_objects_without_a_restart(
    guarded_service: None,
    kubectl: Kubectl,
    operator: OperatorProcess,
    namespace: str,
    deletion_watches: Any,
) -> None:
    """No admission policy here (the session's operator runs as a cluster admin): the graph is
    deleted as by anyone with delete rights, or lost with an etcd restore."""
    kubectl.apply(instance(namespace, "web"))
    ready_instance(kubectl, namespace, "web")
    graph = ready_graph(kubectl, namespace, "web")
    kubectl.run(
        "wait", "--for=condition=Available", "deployment/web", "-n", namespace, "--timeout=120s"
    )
    deployment = kubectl.get("deployment", "web", "-n", namespace)
    before = {kind: uids(kubectl, namespace, kind) for kind in WATCHED}
    assert len(before["pods"]) == 2, before
    assert {kind for kind, _, _ in inventory(graph)} >= {"Deployment", "Service"}
    watches = deletion_watches({kind: len(names) for kind, names in before.items()})

    # --wait=false: the operator writes the replacement under the same name within
    # milliseconds of the old one going, and kubectl's own wait for the deletion can miss
    # that (it hung for its 60 s once); the replacement is waited for by its new uid.
    kubectl.run("delete", "resourcegraph", f"{GRAPH_PREFIX}-web", "-n", namespace, "--wait=false")
    replaced = ready_graph(kubectl, namespace, "web", not_uid=graph["metadata"]["uid"])

    # The new graph took over the same objects: same uids in its inventory and in the cluster.
    assert inventory(replaced) == inventory(graph)
    # ... and found them as rendered: it applied nothing (a node applied says when).
    assert [n for n in replaced["status"]["nodes"] if n.get("appliedAt")] == []
    assert {kind: uids(kubectl, namespace, kind) for kind in WATCHED} == before
    # Nothing was deleted on the way, not even for a moment.
    assert {w.kind: w.deleted() for w in watches} == {kind: [] for kind in WATCHED}
    # No rollout: the Deployment's spec and pod template are as they were.
    after = kubectl.get("deployment", "web", "-n", namespace)
    assert after["metadata"]["generation"] == deployment["metadata"]["generation"]
    assert after["spec"]["template"] == deployment["spec"]["template"]
    pod_template_hashes = {
        p["metadata"]["labels"]["pod-template-hash"]
        for p in kubectl.get("pods", "-n", namespace)["items"]
    }
    assert len(pod_template_hashes) == 1

    # Said where someone will look: a Warning Event on the instance, and the operator's log.
    def warned() -> list[dict[str, Any]]:
        return [
            e
            for e in kubectl.get("events", "-n", namespace)["items"]
            if e["reason"] == "ResourceGraphDeleted" and e["involvedObject"]["name"] == "web"
        ]

    (event,) = wait_for(warned, what="the ResourceGraphDeleted event")
    assert event["type"] == "Warning"
    assert event["involvedObject"]["kind"] == KIND
    assert "are left in place for the graph that replaces it to adopt" in event["message"]
    assert "objects left in place" in operator.log()
    assert condition(ready_instance(kubectl, namespace, "web"), "Ready")

    # The adopted objects are the new graph's: deleting the instance removes them.
    kubectl.run("delete", KIND.lower(), "web", "-n", namespace, "--timeout=120s")
    assert kubectl.get("deployment", "web", "-n", namespace) is None
    assert kubectl.get("service", "web", "-n", namespace) is None


# -- with the admission policy, on a control plane of its own -----------------------------


@pytest.fixture(scope="module")
def protected_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A control plane with Pequod's CRDs, RBAC and admission policy, and the operator running
    as its ServiceAccount (the session's operator runs as an admin, whom the policy refuses)."""
    plane = ControlPlane(tmp_path_factory.mktemp("protected-plane"))
    plane.start()
    try:
        plane.start_workloads()
        kubectl = Kubectl(plane)
        kubectl.run(
            "apply",
            "--server-side",
            *(f"--filename={MANIFESTS / part}" for part in ("crds", "rbac", "admission")),
        )
        wait_established(
            kubectl.plane.kubeconfig,
            "transforms.platform.pequod.io",
            "resourcegraphs.platform.pequod.io",
        )
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="module")
def protected_operator(
    protected_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    directory = tmp_path_factory.mktemp("protected-operator")
    kubectl = Kubectl(protected_plane)
    kubeconfig = service_account_kubeconfig(protected_plane, kubectl, directory / "kubeconfig")
    process = OperatorProcess(protected_plane, directory / "operator.log", kubeconfig=kubeconfig)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def new_namespace(kubectl: Kubectl, name: str) -> str:
    kubectl.run("create", "namespace", name)
    return name


def test_the_policy_refuses_graph_deletion_to_anyone_rbac_allows_but_not_the_cleanup(
    protected_plane: ControlPlane, protected_operator: OperatorProcess, tmp_path: Path
) -> None:
    kubectl = Kubectl(protected_plane)
    namespace = new_namespace(kubectl, "guarded")
    kubectl.apply(DELETER_RBAC.format(deleter=DELETER, namespace=namespace))
    deleter = f"system:serviceaccount:{namespace}:{DELETER}"
    # RBAC lets it delete graphs: whatever refuses it is the admission policy.
    allowed = kubectl.run(
        "auth",
        "can-i",
        "delete",
        "resourcegraphs.platform.pequod.io",
        "-n",
        namespace,
        f"--as={deleter}",
        check=False,
    )
    assert allowed.stdout.strip() == "yes", allowed.stderr

    kubectl.apply(TRANSFORM)
    ready_transform(kubectl, "guarded-service")
    kubectl.apply(instance(namespace, "web"))
    ready_instance(kubectl, namespace, "web")
    graph = ready_graph(kubectl, namespace, "web")
    graph_name = f"{GRAPH_PREFIX}-web"

    refused = kubectl.run(
        "delete", "resourcegraph", graph_name, "-n", namespace, f"--as={deleter}", check=False
    )
    assert refused.returncode != 0
    assert (
        f"only the Pequod operator ({OPERATOR_USERNAME}), the garbage collector and the "
        f"namespace controller may delete ResourceGraphs, not {deleter}; delete the instance "
        f"instead (kubectl delete {KIND.lower()} web -n {namespace}), and the operator deletes "
        "its graph and objects"
    ) in refused.stderr, refused.stderr
    # A cluster admin is refused as well.
    admin = kubectl.run("delete", "resourcegraph", graph_name, "-n", namespace, check=False)
    assert admin.returncode != 0
    assert "may delete ResourceGraphs, not pequod-admin" in admin.stderr, admin.stderr
    kept = kubectl.get("resourcegraph", graph_name, "-n", namespace)
    assert kept["metadata"]["uid"] == graph["metadata"]["uid"]
    assert not kept["metadata"].get("deletionTimestamp")

    # Deleting the instance works end to end: the operator deletes the graph, then the objects.
    kubectl.run("delete", KIND.lower(), "web", "-n", namespace, "--timeout=120s")
    assert kubectl.get("resourcegraph", graph_name, "-n", namespace) is None
    for kind in ("deployment", "service"):
        assert kubectl.get(kind, "web", "-n", namespace) is None, kind

    # Deleting a namespace with a live instance in it completes, the graph and objects with it.
    doomed = new_namespace(kubectl, "doomed")
    kubectl.apply(instance(doomed, "web"))
    ready_instance(kubectl, doomed, "web")
    ready_graph(kubectl, doomed, "web")
    # The namespace controller deletes kinds in no fixed order. Holding the instance makes it
    # delete the graph while the instance lives: the graph's objects go all the same.
    kubectl.apply(HOLD_INSTANCES.format(namespace=doomed))

    def held() -> bool:
        attempt = kubectl.run(
            "delete", KIND.lower(), "web", "-n", doomed, "--dry-run=server", check=False
        )
        return "held for the test" in attempt.stderr

    wait_for(held, what="the instance held")
    kubectl.run("delete", "namespace", doomed, "--wait=false")
    wait_for(
        lambda: kubectl.get("resourcegraph", f"{GRAPH_PREFIX}-web", "-n", doomed) is None,
        within=120,
        what="the graph deleted with its namespace",
    )
    alive = kubectl.get(KIND.lower(), "web", "-n", doomed)
    assert alive is not None
    assert not alive["metadata"].get("deletionTimestamp")
    log = protected_operator.log()
    assert "objects left in place" not in log, log[-3000:]
    kubectl.run("delete", "validatingadmissionpolicy,validatingadmissionpolicybinding", "hold")
    kubectl.run("wait", "--for=delete", f"namespace/{doomed}", "--timeout=180s")
