"""manifests/ holds what the code generates, and the admission policy lets only the operator
write ResourceGraphs (and the garbage collector and the namespace controller delete them), even
for a user whom RBAC allows to write them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pequod.api.crds import all_crds
from pequod.api.names import OPERATOR_USERNAME
from tests.operator_harness import REPOSITORY, Kubectl, wait_for

MANIFESTS = REPOSITORY / "manifests"


def test_crd_manifests_match_the_code() -> None:
    for crd in all_crds():
        path = MANIFESTS / "crds" / f"{crd['metadata']['name']}.yaml"
        if os.environ.get("PEQUOD_UPDATE_GOLDEN") == "1":
            path.write_text(yaml.safe_dump(crd, sort_keys=False))
            # The Helm chart ships the same files (test_chart checks they are equal).
            (REPOSITORY / "charts" / "pequod" / "crds" / path.name).write_text(path.read_text())
        assert yaml.safe_load(path.read_text()) == crd, f"{path} is stale: PEQUOD_UPDATE_GOLDEN=1"


def test_admission_policy_names_the_operator_service_account() -> None:
    text = (MANIFESTS / "admission" / "resourcegraph-writers.yaml").read_text()
    assert OPERATOR_USERNAME in text


GRAPH = """apiVersion: platform.pequod.io/v1alpha1
kind: ResourceGraph
metadata:
  name: forged
  namespace: {namespace}
spec:
  sourceRef: {{apiVersion: v1, kind: ConfigMap, name: x}}
  nodes: []
"""

WRITER = "graph-writer"
"""A user whom RBAC allows to write ResourceGraphs: only the admission policy refuses it."""
WRITER_ROLE = """apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: pequod-test-resourcegraph-writer
rules:
  - apiGroups: ["platform.pequod.io"]
    resources: ["resourcegraphs", "resourcegraphs/status"]
    verbs: ["get", "list", "create", "update", "patch", "delete"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: resourcegraph-writer
  namespace: {namespace}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: pequod-test-resourcegraph-writer
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: User
    name: {writer}
"""


@pytest.fixture
def admission_policy(kubectl: Kubectl, pequod_crds: None) -> Iterator[Path]:
    path = MANIFESTS / "admission" / "resourcegraph-writers.yaml"
    kubectl.run("apply", "-f", str(path))
    try:
        yield path
    finally:
        kubectl.run("delete", "-f", str(path), "--ignore-not-found")


@pytest.fixture
def graph_writer(kubectl: Kubectl, namespace: str) -> Iterator[str]:
    """``--as`` for a user RBAC allows to create, change and delete ResourceGraphs in
    ``namespace``."""
    kubectl.apply(WRITER_ROLE.format(namespace=namespace, writer=WRITER))
    try:
        for verb in ("create", "update", "delete"):
            allowed = kubectl.run(
                "auth",
                "can-i",
                verb,
                "resourcegraphs.platform.pequod.io",
                "-n",
                namespace,
                f"--as={WRITER}",
                check=False,
            )
            assert allowed.stdout.strip() == "yes", (verb, allowed.stdout, allowed.stderr)
        yield f"--as={WRITER}"
    finally:
        kubectl.run(
            "delete", "clusterrole", "pequod-test-resourcegraph-writer", "--ignore-not-found"
        )


@pytest.mark.cluster
def test_only_the_operator_may_write_resource_graphs(
    kubectl: Kubectl, admission_policy: Path, namespace: str, graph_writer: str
) -> None:
    manifest = GRAPH.format(namespace=namespace)
    as_operator = (f"--as={OPERATOR_USERNAME}", "--as-group=system:masters")

    def refused_for_writer() -> str:
        attempt = kubectl.run(
            "create", "--dry-run=server", "-f", "-", graph_writer, stdin=manifest, check=False
        )
        # The policy takes effect a moment after it is created.
        return attempt.stderr if attempt.returncode != 0 else ""

    message = wait_for(refused_for_writer, what="the policy refusing a user RBAC allows")
    assert (
        f"only the Pequod operator ({OPERATOR_USERNAME}) may create or change ResourceGraphs, "
        f"not {WRITER}"
    ) in message, message
    # Cluster admins are refused too.
    admin = kubectl.run("create", "--dry-run=server", "-f", "-", stdin=manifest, check=False)
    assert admin.returncode != 0
    assert "only the Pequod operator" in admin.stderr

    kubectl.run("create", "-f", "-", *as_operator, stdin=manifest)
    changed = kubectl.run(
        "label",
        "resourcegraph",
        "forged",
        "-n",
        namespace,
        "touched=yes",
        graph_writer,
        check=False,
    )
    assert changed.returncode != 0
    assert f"may create or change ResourceGraphs, not {WRITER}" in changed.stderr

    deleted = kubectl.run(
        "delete", "resourcegraph", "forged", "-n", namespace, graph_writer, check=False
    )
    assert deleted.returncode != 0
    assert (
        f"only the Pequod operator ({OPERATOR_USERNAME}), the garbage collector and the "
        f"namespace controller may delete ResourceGraphs, not {WRITER}; delete the instance "
        f"instead (kubectl delete configmap x -n {namespace})"
    ) in deleted.stderr, deleted.stderr
    assert kubectl.get("resourcegraph", "forged", "-n", namespace) is not None

    # The garbage collector and the namespace controller may delete graphs (their RBAC lets
    # them delete anything); the operator may delete them.
    for controller in ("generic-garbage-collector", "namespace-controller"):
        kubectl.run(
            "delete",
            "resourcegraph",
            "forged",
            "-n",
            namespace,
            "--dry-run=server",
            f"--as=system:serviceaccount:kube-system:{controller}",
        )
    kubectl.run("delete", "resourcegraph", "forged", "-n", namespace, *as_operator)
    assert kubectl.get("resourcegraph", "forged", "-n", namespace) is None


REVISION = """apiVersion: apps/v1
kind: ControllerRevision
metadata:
  name: forged-revision
  namespace: {namespace}
  labels: {{app.kubernetes.io/managed-by: pequod, platform.pequod.io/revision-of: x}}
revision: 1
data: {{sourceRef: {{apiVersion: v1, kind: ConfigMap, name: x}}, nodes: []}}
"""


@pytest.fixture
def revision_policy(kubectl: Kubectl) -> Iterator[Path]:
    path = MANIFESTS / "admission" / "revision-writers.yaml"
    kubectl.run("apply", "-f", str(path))
    try:
        yield path
    finally:
        kubectl.run("delete", "-f", str(path), "--ignore-not-found")


@pytest.mark.cluster
def test_only_the_operator_may_write_the_revisions_of_instances(
    kubectl: Kubectl, revision_policy: Path, namespace: str
) -> None:
    """A revision is put back as it is by a rollback: a forged one would apply what no render
    made. Cluster admins are refused; a ControllerRevision without the revision-of label (a
    StatefulSet's, whose pod template may carry managed-by: pequod) is not the policy's
    business."""
    manifest = REVISION.format(namespace=namespace)

    def refused_for_admin() -> str:
        attempt = kubectl.run("create", "--dry-run=server", "-f", "-", stdin=manifest, check=False)
        return attempt.stderr if attempt.returncode != 0 else ""

    message = wait_for(refused_for_admin, what="the policy refusing a forged revision")
    assert f"only the Pequod operator ({OPERATOR_USERNAME}) may write the revisions" in message
    as_operator = (f"--as={OPERATOR_USERNAME}", "--as-group=system:masters")
    kubectl.run("create", "-f", "-", *as_operator, stdin=manifest)
    relabelled = kubectl.run(
        "label", "controllerrevision", "forged-revision", "-n", namespace, "touched=yes",
        check=False,
    )  # fmt: skip
    assert relabelled.returncode != 0
    assert "only the Pequod operator" in relabelled.stderr
    # A StatefulSet's revisions carry its pod template's labels, Pequod's among them.
    unlabelled = manifest.replace(", platform.pequod.io/revision-of: x", "").replace(
        "forged-revision", "someone-elses"
    )
    kubectl.run("create", "--dry-run=server", "-f", "-", stdin=unlabelled)
    kubectl.run("delete", "controllerrevision", "forged-revision", "-n", namespace, *as_operator)
