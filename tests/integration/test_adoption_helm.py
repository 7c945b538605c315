"""Moving a Helm release to Pequod, as docs/user-guide.md says, against a real control plane
with kube-controller-manager, the scheduler and kwok: the release's objects (installed with
the pinned helm from examples/charts/web) are adopted without rolling the pods, Helm's record
of the release is removed so that it can no longer delete them, and they stay, managed by
Pequod."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from pequod.controlplane import ControlPlane
from pequod.toolchain.locate import find_binary
from tests.operator_harness import (
    REPOSITORY,
    Kubectl,
    OperatorProcess,
    condition,
    ready_transform,
    transform,
    wait_for,
)

pytestmark = pytest.mark.cluster

CHART = REPOSITORY / "examples" / "charts" / "web"


def helm(
    plane: ControlPlane, *arguments: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [str(find_binary("helm")), f"--kubeconfig={plane.kubeconfig}", *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if check and completed.returncode != 0:
        raise AssertionError(f"helm {' '.join(arguments)}: {completed.stderr}")
    return completed


@pytest.fixture(scope="module")
def helm_web_api(
    kubectl: Kubectl, workload_control_plane: ControlPlane, operator: OperatorProcess
) -> Iterator[None]:
    kubectl.apply(
        transform(
            "helm-web",
            "{type: embedded, ref: webservice@1.2.0}",
            "  kind: HelmWeb\n  adoption:\n    allowedStrategies: [TakeOwnership]\n",
        )
    )
    ready_transform(kubectl, "helm-web")
    try:
        yield
    finally:
        kubectl.run("delete", "transform", "helm-web", "--wait=false")


def managers_of(obj: dict[str, Any], *path: str) -> set[str]:
    found = set()
    for entry in obj["metadata"].get("managedFields") or []:
        fields: Any = entry.get("fieldsV1") or {}
        for part in path:
            fields = fields.get(part) if isinstance(fields, dict) else None
        if fields is not None:
            found.add(entry["manager"])
    return found


def pods_and_sets(kubectl: Kubectl, namespace: str) -> tuple[set[str], set[str]]:
    selector = "app.kubernetes.io/instance=legacy"

    def found() -> tuple[set[str], set[str]] | None:
        pods = kubectl.get("pods", "-n", namespace, "-l", selector)["items"]
        sets = kubectl.get("replicasets", "-n", namespace, "-l", selector)["items"]
        if len(pods) != 2:
            return None
        return {p["metadata"]["uid"] for p in pods}, {s["metadata"]["name"] for s in sets}

    result: tuple[set[str], set[str]] = wait_for(found, within=120, what="the release's pods")
    return result


def test_a_helm_release_moves_to_pequod_without_rolling_its_pods(
    kubectl: Kubectl,
    workload_control_plane: ControlPlane,
    helm_web_api: None,
    namespace: str,
) -> None:
    plane = workload_control_plane
    helm(plane, "install", "legacy", str(CHART), "-n", namespace, "--wait", "--timeout=180s")
    before = pods_and_sets(kubectl, namespace)
    deployment = kubectl.get("deployment", "legacy", "-n", namespace, "--show-managed-fields")
    assert managers_of(deployment, "f:spec", "f:replicas") == {"helm"}

    kubectl.apply(f"""\
apiVersion: platform.pequod.io/v1alpha1
kind: HelmWeb
metadata:
  name: legacy
  namespace: {namespace}
  annotations: {{pequod.io/adopt: TakeOwnership}}
spec:
  image: docker.io/nginxinc/nginx-unprivileged:1.27
  replicas: 2
""")
    ready = wait_for(
        lambda: (
            (found := kubectl.get("helmweb", "legacy", "-n", namespace))
            and (condition(found, "Ready") or {}).get("status") == "True"
            and found
        ),
        within=180,
        what="the instance Ready",
    )
    assert ready["status"]["adoptedNodes"] == 3  # deployment, service, pdb
    assert pods_and_sets(kubectl, namespace) == before  # not rolled
    deployment = kubectl.get("deployment", "legacy", "-n", namespace, "--show-managed-fields")
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert managers_of(deployment, "f:spec", "f:replicas") == {"pequod"}
    container = ("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"app"}')
    assert managers_of(deployment, *container, "f:image") == {"pequod"}
    # What the module does not render (defaults the API server filled in) stays Helm's.
    assert managers_of(deployment, *container, "f:imagePullPolicy") == {"helm"}
    graph = kubectl.get("resourcegraph", "helmweb-legacy", "-n", namespace)
    adopted_from = {n["id"]: n.get("adoptedFrom") for n in graph["status"]["nodes"]}
    assert adopted_from == {"deployment": ["helm"], "service": ["helm"], "pdb": ["helm"]}
    events = kubectl.get(
        "events",
        "-n",
        namespace,
        "--field-selector",
        "involvedObject.kind=Deployment,involvedObject.name=legacy,reason=Adopted",
    )["items"]
    assert any("from helm" in e["message"] for e in events), events

    # As the guide says: Helm forgets the release, so `helm uninstall` cannot delete what
    # Pequod now owns; its annotations go too.
    kubectl.run("delete", "secret", "-n", namespace, "-l", "owner=helm,name=legacy")
    assert helm(plane, "list", "-n", namespace, "-q").stdout.strip() == ""
    uninstall = helm(plane, "uninstall", "legacy", "-n", namespace, check=False)
    assert uninstall.returncode != 0
    assert "not found" in uninstall.stderr
    kubectl.run(
        "annotate",
        "-n",
        namespace,
        "deployment,service,poddisruptionbudget",
        "legacy",
        "meta.helm.sh/release-name-",
        "meta.helm.sh/release-namespace-",
    )
    for kind in ("deployment", "service", "poddisruptionbudget"):
        obj = kubectl.get(kind, "legacy", "-n", namespace)
        assert obj["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "pequod", kind
    assert pods_and_sets(kubectl, namespace) == before

    # Managed: a change of the instance reaches the Deployment, and deleting the instance
    # deletes its objects.
    kubectl.run(
        "patch",
        "helmweb",
        "legacy",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"replicas":3}}',
    )
    wait_for(
        lambda: kubectl.get("deployment", "legacy", "-n", namespace)["spec"]["replicas"] == 3,
        what="replicas 3",
    )
    kubectl.run("delete", "helmweb", "legacy", "-n", namespace, "--timeout=180s")
    for kind in ("deployment", "service", "poddisruptionbudget"):
        assert kubectl.get(kind, "legacy", "-n", namespace) is None, kind
