"""Writes the API server refuses for good end in conditions, never in retries or tracebacks.

A graph too large to store is refused before it is written: offline, `pequod render` exits 1
with the size, the limit and the largest nodes; in the cluster the instance gets Rendered=False
(GraphTooLarge) and one Warning Event, the graph it had stays in force, and nothing retries. A
graph under Pequod's limit that etcd refuses (the limit raised above etcd's) is a condition too.
So are an instance status and a graph status that an admission policy refuses."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.operator_harness import (
    Kubectl,
    OperatorProcess,
    condition,
    inline_transform,
    ready_transform,
    wait_for,
)

BLOBS_MODULE = """package blobs

import (
	"list"
	"strings"
)

#Metadata: {name: "blobs", version: "0.1.0", kind: "Blob"}

#Input: {
	// How many ConfigMaps to render.
	count: int & >=1 & <=100 | *1
	// Characters of data in each.
	size: int & >=0 & <=200000 | *10
}

#Render: {
	input: {
		metadata: {name: string, namespace: string, labels?: {...}, annotations?: {...}}
		spec: #Input
	}
	output: nodes: [for i in list.Range(0, input.spec.count, 1) {
		id: "blob-\\(i)"
		object: {
			apiVersion: "v1"
			kind:       "ConfigMap"
			metadata: name: "\\(input.metadata.name)-\\(i)"
			data: blob: strings.Repeat("x", input.spec.size)
		}
	}]
}
"""


def blobs(namespace: str, name: str, count: int, size: int, labels: str = "{}") -> str:
    return (
        "apiVersion: platform.pequod.io/v1alpha1\nkind: Blob\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\n  labels: {labels}\n"
        f"spec:\n  count: {count}\n  size: {size}\n"
    )


def rendered_false(kubectl: Kubectl, namespace: str, name: str, reason: str) -> dict[str, Any]:
    def refused() -> dict[str, Any] | None:
        found = kubectl.get("blob", name, "-n", namespace)
        rendered = condition(found, "Rendered")
        return found if rendered and rendered["reason"] == reason else None

    try:
        result: dict[str, Any] = wait_for(refused, what=f"Rendered=False ({reason})")
    except AssertionError as error:
        status = (kubectl.get("blob", name, "-n", namespace) or {}).get("status")
        raise AssertionError(f"{error}\nstatus: {status}") from None
    return result


def warnings(kubectl: Kubectl, namespace: str, name: str, reason: str) -> int:
    selector = f"involvedObject.name={name}"
    events = kubectl.get("events", "-n", namespace, "--field-selector", selector)
    return sum(
        int(e.get("count") or 1)
        for e in events["items"]
        if e["reason"] == reason and e["type"] == "Warning"
    )


def retries_and_errors(operator: OperatorProcess) -> tuple[float, float]:
    metrics = operator.metrics()
    return (
        metrics.get('workqueue_retries_total{name="instance"}', 0.0),
        metrics.get('controller_runtime_reconcile_errors_total{controller="instance"}', 0.0),
    )


@pytest.fixture
def log_of_this_test(operator: OperatorProcess) -> Callable[[], str]:
    """What the session's operator logged since the test started (other tests' lines apart)."""
    start = len(operator.log())
    return lambda: operator.log()[start:]


def assert_no_retries(
    operator: OperatorProcess, before: tuple[float, float], log: Callable[[], str]
) -> None:
    """A full resync (SIGHUP) brings the instance back once: the refusal is not retried, not
    logged with a traceback, and not recorded again."""
    assert operator.process is not None
    operator.process.send_signal(signal.SIGHUP)
    time.sleep(3)
    assert retries_and_errors(operator) == before
    assert "Traceback" not in log()


def test_render_refuses_a_graph_over_the_limit_offline(tmp_path: Path) -> None:
    (tmp_path / "module").mkdir()
    (tmp_path / "module" / "blobs.cue").write_text(BLOBS_MODULE)
    (tmp_path / "instance.yaml").write_text(blobs("default", "big", 6, 20000))
    command = [sys.executable, "-m", "pequod", "render", str(tmp_path / "module")]
    command += ["--input", str(tmp_path / "instance.yaml")]
    refused = subprocess.run(
        [*command, "--max-graph-bytes=65536"], capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 1, refused.stderr
    assert "the ResourceGraph would take about 12" in refused.stderr
    assert "6 nodes" in refused.stderr
    assert "over the limit of 64.0 KiB" in refused.stderr
    assert "largest nodes: blob-0 (19.7 KiB)" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert refused.stdout == ""  # nothing is printed as if it were the graph

    allowed = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert allowed.returncode == 0, allowed.stderr
    assert "blob-5" in allowed.stdout


@pytest.fixture(scope="module")
def blobs_api(kubectl: Kubectl, operator: OperatorProcess) -> Iterator[None]:
    kubectl.apply(inline_transform("blobs", BLOBS_MODULE))
    ready_transform(kubectl, "blobs")
    yield
    kubectl.run("delete", "transform", "blobs", "--wait=false")


@pytest.mark.cluster
def test_an_instance_over_the_limit_keeps_its_graph_and_says_why(
    kubectl: Kubectl,
    operator: OperatorProcess,
    blobs_api: None,
    namespace: str,
    log_of_this_test: Callable[[], str],
) -> None:
    kubectl.apply(blobs(namespace, "b", 2, 10))
    ready = wait_for(
        lambda: (
            (found := kubectl.get("blob", "b", "-n", namespace))
            and (found.get("status") or {}).get("phase") == "Ready"
            and found
        ),
        what="Blob b Ready",
    )
    graph = kubectl.get("resourcegraph", "blob-b", "-n", namespace)
    render_hash = graph["spec"]["metadata"]["renderHash"]
    assert ready["status"]["renderHash"] == render_hash

    # 12 ConfigMaps of ~98 KiB: about 1.2 MiB as a ResourceGraph, over the default 1 MiB.
    kubectl.apply(blobs(namespace, "b", 12, 100000))
    found = rendered_false(kubectl, namespace, "b", "GraphTooLarge")
    message = condition(found, "Rendered")["message"]  # type: ignore[index]
    assert "the ResourceGraph would take about 1.2 MiB" in message, message
    assert "12 nodes" in message, message
    assert "over the limit of 1.0 MiB" in message, message
    assert re.search(r"largest nodes: blob-\d+ \(97\.\d KiB\)", message), message
    ready_condition = condition(found, "Ready")
    assert ready_condition is not None
    assert ready_condition["reason"] == "GraphTooLarge"
    assert found["status"]["phase"] == "Failed"

    # The graph written before stays in force, with its objects.
    kept = kubectl.get("resourcegraph", "blob-b", "-n", namespace)
    assert kept["spec"]["metadata"]["renderHash"] == render_hash
    assert kubectl.get("configmap", "b-1", "-n", namespace) is not None
    assert kubectl.get("configmap", "b-2", "-n", namespace) is None

    wait_for(lambda: warnings(kubectl, namespace, "b", "GraphTooLarge") >= 1, what="Warning Event")
    before = retries_and_errors(operator)
    assert_no_retries(operator, before, log_of_this_test)
    assert warnings(kubectl, namespace, "b", "GraphTooLarge") == 1

    # A spec that fits again is rendered and applied.
    kubectl.apply(blobs(namespace, "b", 3, 10))
    wait_for(lambda: kubectl.get("configmap", "b-2", "-n", namespace), what="ConfigMap b-2")


@pytest.fixture
def operator_with_a_raised_limit(operator: OperatorProcess) -> Iterator[OperatorProcess]:
    """The session's operator, restarted with --max-graph-bytes above etcd's 1.5 MiB."""
    operator.stop()
    operator.start("--max-graph-bytes=2900000")
    try:
        yield operator
    finally:
        operator.stop()
        operator.start()


@pytest.mark.cluster
def test_a_graph_etcd_refuses_is_a_condition(
    kubectl: Kubectl,
    blobs_api: None,
    operator_with_a_raised_limit: OperatorProcess,
    namespace: str,
    log_of_this_test: Callable[[], str],
) -> None:
    # 18 ConfigMaps of ~98 KiB: about 1.8 MB, under the raised limit and the API server's
    # 3 MiB request limit, over etcd's 1.5 MiB.
    kubectl.apply(blobs(namespace, "e", 18, 100000))
    found = rendered_false(kubectl, namespace, "e", "GraphRejected")
    message = condition(found, "Rendered")["message"]  # type: ignore[index]
    assert "the API server refused ResourceGraph blob-e" in message, message
    assert "request is too large" in message, message
    assert kubectl.get("resourcegraph", "blob-e", "-n", namespace) is None
    wait_for(lambda: warnings(kubectl, namespace, "e", "GraphRejected") >= 1, what="Warning Event")
    operator = operator_with_a_raised_limit
    assert_no_retries(operator, retries_and_errors(operator), log_of_this_test)
    assert warnings(kubectl, namespace, "e", "GraphRejected") == 1


# Refuses, for objects with a label, an instance status with a renderHash and a graph status
# with nodes: the full statuses the operator writes, not the minimal ones it falls back to. A
# ConfigMap policy-probe with the label is refused too, so a test can see the policy in effect.
REFUSING_POLICY = """apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: {name}
spec:
  failurePolicy: Fail
  matchConstraints:
    objectSelector:
      matchLabels: {{{key}: "{value}"}}
    resourceRules:
      - apiGroups: [""]
        apiVersions: ["v1"]
        operations: ["CREATE"]
        resources: ["configmaps"]
      - apiGroups: ["platform.pequod.io"]
        apiVersions: ["*"]
        operations: ["UPDATE"]
        resources: ["blobs/status", "resourcegraphs/status"]
  validations:
    - expression: "object.metadata.name != 'policy-probe'"
      message: "the probe is refused"
    - expression: >-
        !has(object.status) || !(has(object.status.renderHash) || has(object.status.nodes))
      message: "this test refuses the status"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: {name}
spec:
  policyName: {name}
  validationActions: ["Deny"]
"""

PROBE = """apiVersion: v1
kind: ConfigMap
metadata:
  name: policy-probe
  namespace: {namespace}
  labels: {{{key}: "{value}"}}
data: {{a: b}}
"""


@pytest.fixture
def refuse_statuses(kubectl: Kubectl, namespace: str) -> Iterator[Callable[[str, str], None]]:
    """Installs a policy refusing full statuses of objects labelled KEY=VALUE, and returns once
    it is in effect."""
    name = f"refuse-{namespace}"

    def install(key: str, value: str) -> None:
        kubectl.apply(REFUSING_POLICY.format(name=name, key=key, value=value))
        probe = PROBE.format(namespace=namespace, key=key, value=value)

        def probe_refused() -> bool:
            attempt = kubectl.run("create", "--dry-run=server", "-f", "-", stdin=probe, check=False)
            return "the probe is refused" in attempt.stderr

        wait_for(probe_refused, what="the refusing policy in effect")

    try:
        yield install
    finally:
        kubectl.run(
            "delete",
            "validatingadmissionpolicy,validatingadmissionpolicybinding",
            name,
            "--ignore-not-found",
        )


def ready_reason(kubectl: Kubectl, kind: str, name: str, namespace: str, reason: str) -> Any:
    return wait_for(
        lambda: (
            (found := kubectl.get(kind, name, "-n", namespace))
            and (ready := condition(found, "Ready"))
            and ready["reason"] == reason
            and found
        ),
        what=f"{kind} {name}: Ready=False {reason}",
    )


@pytest.mark.cluster
def test_a_refused_instance_status_becomes_a_condition(
    kubectl: Kubectl,
    operator: OperatorProcess,
    blobs_api: None,
    namespace: str,
    refuse_statuses: Callable[[str, str], None],
    log_of_this_test: Callable[[], str],
) -> None:
    refuse_statuses("test.pequod.io/refuse-status", "true")
    labels = '{test.pequod.io/refuse-status: "true"}'
    kubectl.apply(blobs(namespace, "s", 1, 10, labels=labels))
    found = ready_reason(kubectl, "blob", "s", namespace, "StatusRejected")
    message = condition(found, "Ready")["message"]  # type: ignore[index]
    assert "the API server refused the Blob's status" in message, message
    assert "this test refuses the status" in message, message
    assert found["status"]["phase"] == "Failed"
    # The graph was written and applied: only the instance's own status was refused.
    assert kubectl.get("configmap", "s-0", "-n", namespace) is not None
    wait_for(lambda: warnings(kubectl, namespace, "s", "StatusRejected") >= 1, what="Event")
    assert "Traceback" not in log_of_this_test()


@pytest.mark.cluster
def test_a_refused_graph_status_reaches_the_instance(
    kubectl: Kubectl,
    operator: OperatorProcess,
    blobs_api: None,
    namespace: str,
    refuse_statuses: Callable[[str, str], None],
    log_of_this_test: Callable[[], str],
) -> None:
    # Graphs carry the instance's name as a label: a name of this test's own.
    name = f"g-{namespace}"
    refuse_statuses("platform.pequod.io/instance-name", name)
    kubectl.apply(blobs(namespace, name, 1, 10))
    graph = ready_reason(kubectl, "resourcegraph", f"blob-{name}", namespace, "StatusRejected")
    assert "this test refuses the status" in condition(graph, "Ready")["message"]  # type: ignore[index]
    assert graph["status"]["inventory"][0]["name"] == f"{name}-0"
    found = ready_reason(kubectl, "blob", name, namespace, "GraphFailed")
    message = condition(found, "Ready")["message"]  # type: ignore[index]
    assert "the API server refused the ResourceGraph's status" in message, message
    assert found["status"]["phase"] == "Failed"
    assert "Traceback" not in log_of_this_test()
