"""manifests/ holds what the code generates, and the admission policy lets only the operator
write ResourceGraphs."""

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


@pytest.fixture
def admission_policy(kubectl: Kubectl, pequod_crds: None) -> Iterator[Path]:
    path = MANIFESTS / "admission" / "resourcegraph-writers.yaml"
    kubectl.run("apply", "-f", str(path))
    try:
        yield path
    finally:
        kubectl.run("delete", "-f", str(path), "--ignore-not-found")


@pytest.mark.cluster
def test_only_the_operator_may_write_resource_graphs(
    kubectl: Kubectl, admission_policy: Path, namespace: str
) -> None:
    manifest = GRAPH.format(namespace=namespace)

    def refused_for_admin() -> str:
        attempt = kubectl.run("create", "--dry-run=server", "-f", "-", stdin=manifest, check=False)
        # The policy takes effect a moment after it is created.
        return attempt.stderr if attempt.returncode != 0 else ""

    message = wait_for(refused_for_admin, what="the policy refusing a cluster admin")
    assert "only the Pequod operator" in message
    someone = kubectl.run(
        "apply",
        "-f",
        "-",
        "--as=system:serviceaccount:default:someone",
        stdin=manifest,
        check=False,
    )
    assert someone.returncode != 0
    operator = kubectl.run(
        "create",
        "--dry-run=server",
        "-f",
        "-",
        f"--as={OPERATOR_USERNAME}",
        "--as-group=system:masters",
        stdin=manifest,
    )
    assert operator.returncode == 0
