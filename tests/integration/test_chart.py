"""The Helm chart renders (with the pinned helm) to what manifests/ holds: the same CRDs, RBAC
rules, hardened Deployment, probes and admission policy; its values switch leader election,
RBAC, the ServiceAccount and a ServiceMonitor. And the Containerfile builds the pinned cue and
runs as non-root."""

from __future__ import annotations

import re
import subprocess
import tomllib
from typing import Any

import pytest
import yaml

from pequod.toolchain.locate import find_binary
from tests.operator_harness import REPOSITORY

CHART = REPOSITORY / "charts" / "pequod"
MANIFESTS = REPOSITORY / "manifests"


def render(*values: str) -> dict[tuple[str, str], dict[str, Any]]:
    completed = subprocess.run(
        [
            str(find_binary("helm")),
            "template",
            "pequod",
            str(CHART),
            "--namespace=pequod-system",
            "--include-crds",
            *(f"--set={v}" for v in values),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return {
        (doc["kind"], doc["metadata"]["name"]): doc
        for doc in yaml.safe_load_all(completed.stdout)
        if doc
    }


def manifest(path: str) -> dict[str, Any]:
    """The first document of a manifest file."""
    document: dict[str, Any] = next(yaml.safe_load_all((MANIFESTS / path).read_text()))
    return document


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (found,) = deployment["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = found
    return result


def test_chart_matches_the_manifests() -> None:
    rendered = render()
    for path in sorted((MANIFESTS / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        assert rendered[("CustomResourceDefinition", crd["metadata"]["name"])] == crd
    assert (
        rendered[("ClusterRole", "pequod-operator")]["rules"] == manifest("rbac/role.yaml")["rules"]
    )
    binding = rendered[("ClusterRoleBinding", "pequod-operator")]
    assert binding["subjects"] == manifest("rbac/role_binding.yaml")["subjects"]
    policy = rendered[("ValidatingAdmissionPolicy", "pequod-resourcegraph-writers")]
    assert policy["spec"] == manifest("admission/resourcegraph-writers.yaml")["spec"]
    policy = rendered[("ValidatingAdmissionPolicy", "pequod-revision-writers")]
    assert policy["spec"] == manifest("admission/revision-writers.yaml")["spec"]

    chart_deployment = rendered[("Deployment", "pequod")]
    kustomize_deployment = manifest("operator/deployment.yaml")
    chart_pod = chart_deployment["spec"]["template"]["spec"]
    kustomize_pod = kustomize_deployment["spec"]["template"]["spec"]
    assert chart_pod["securityContext"] == kustomize_pod["securityContext"]
    assert chart_pod["serviceAccountName"] == "pequod"
    ours, theirs = container(chart_deployment), container(kustomize_deployment)
    for field in ("securityContext", "resources", "livenessProbe", "readinessProbe", "ports"):
        assert ours[field] == theirs[field], field
    assert ours["env"] == theirs["env"]
    assert {v["name"] for v in chart_pod["volumes"]} == {
        v["name"] for v in kustomize_pod["volumes"]
    }
    assert set(theirs["args"]) <= set(ours["args"])
    assert chart_deployment["spec"]["replicas"] == 2
    assert ("ServiceMonitor", "pequod") not in rendered


def test_values_switch_the_optional_parts() -> None:
    rendered = render(
        "leaderElection.enabled=false",
        "rbac.create=false",
        "serviceAccount.create=false",
        "serviceAccount.name=platform-operator",
        "metrics.serviceMonitor.enabled=true",
        "replicaCount=1",
        "image.repository=registry.example/pequod",
        "image.tag=9.9.9",
    )
    deployment = rendered[("Deployment", "pequod")]
    assert "--leader-elect" not in container(deployment)["args"]
    assert container(deployment)["image"] == "registry.example/pequod:9.9.9"
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "platform-operator"
    assert not any(kind in ("ClusterRole", "ServiceAccount") for kind, _ in rendered)
    assert rendered[("ServiceMonitor", "pequod")]["spec"]["endpoints"][0]["port"] == "metrics"
    policy = rendered[("ValidatingAdmissionPolicy", "pequod-resourcegraph-writers")]
    assert "system:serviceaccount:pequod-system:platform-operator" in str(policy["spec"])


def test_containerfile_builds_the_pinned_cue_and_runs_unprivileged() -> None:
    text = (REPOSITORY / "Containerfile").read_text()
    pins = tomllib.loads(
        (REPOSITORY / "src" / "pequod" / "toolchain" / "versions.toml").read_text()
    )
    assert f"ARG CUE_VERSION={pins['cue']['version']}" in text
    stages = re.findall(r"^FROM \S+", text, re.MULTILINE)
    assert len(stages) >= 3
    final = text.rsplit("\nFROM ", 1)[1]
    assert re.search(r"^USER 65532:65532$", final, re.MULTILINE)
    assert "COPY --from=cue /out/cue /usr/local/bin/cue" in final
    assert 'ENTRYPOINT ["pequod"]' in final


@pytest.mark.parametrize("name", ["transforms", "resourcegraphs"])
def test_chart_crds_are_the_generated_ones(name: str) -> None:
    path = f"{name}.platform.pequod.io.yaml"
    assert (CHART / "crds" / path).read_text() == (MANIFESTS / "crds" / path).read_text()
