"""The operator against a real control plane: Transforms become served kinds at runtime,
instances become ResourceGraphs, and every failure lands in a condition."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from tests.operator_harness import (
    Kubectl,
    OperatorProcess,
    condition,
    failed_transform,
    inline_transform,
    ready_transform,
    transform,
    wait_for,
)

pytestmark = pytest.mark.cluster


def webservice(namespace: str, name: str, spec: str) -> str:
    return (
        "apiVersion: platform.pequod.io/v1alpha1\nkind: WebService\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n{spec}"
    )


def graph_of(kubectl: Kubectl, namespace: str, name: str, kind: str = "webservice") -> Any:
    return kubectl.get("resourcegraph", f"{kind}-{name}", "-n", namespace)


@pytest.fixture(scope="module")
def webservice_api(kubectl: Kubectl, operator: OperatorProcess) -> dict[str, Any]:
    kubectl.apply(
        transform(
            "webservice",
            "{type: embedded, ref: webservice@1.1.0}",
            "  policies: [{type: embedded, ref: policy/defaults}]\n",
        )
    )
    return ready_transform(kubectl, "webservice")


def test_transform_serves_a_generated_kind(
    kubectl: Kubectl, webservice_api: dict[str, Any], namespace: str
) -> None:
    status = webservice_api["status"]
    assert status["phase"] == "Ready"
    assert status["generatedCRD"] == {
        "apiVersion": "platform.pequod.io/v1alpha1",
        "kind": "WebService",
        "name": "webservices.platform.pequod.io",
    }
    assert status["resolvedCueRef"]["digest"].startswith("sha256:")
    assert status["resolvedCueRef"]["version"] == "1.1.0"
    crd = kubectl.get("crd", "webservices.platform.pequod.io")
    assert crd["metadata"]["labels"]["platform.pequod.io/transform"] == "webservice"
    # `kubectl get` lists instances with their Ready condition, phase and the module's columns.
    kubectl.apply(webservice(namespace, "listed", "  image: ghcr.io/acme/listed:1.0\n"))

    def listed_row() -> list[str] | None:
        rows = [line.split() for line in kubectl.run("get", "ws", "-A").stdout.splitlines()]
        assert rows, "kubectl get ws -A listed nothing"
        header = ["NAMESPACE", "NAME", "READY", "PHASE", "IMAGE", "REPLICAS", "AGE"]
        assert rows[0] == header, rows[0]
        instance = kubectl.get("ws", "listed", "-n", namespace)
        ready = condition(instance, "Ready")
        phase = (instance.get("status") or {}).get("phase")
        expected = [namespace, "listed", ready and ready["status"], phase]
        expected += ["ghcr.io/acme/listed:1.0", "2"]  # the module's columns; 2 by default
        found = [row for row in rows[1:] if row[:2] == [namespace, "listed"]]
        return found[0] if ready and phase and found and found[0][:6] == expected else None

    row = wait_for(listed_row, what="the instance listed with its Ready condition and phase")
    assert len(row) == 7, row
    # The API server publishes the new kind's OpenAPI a moment after Established.
    explained = wait_for(
        lambda: kubectl.run("explain", "webservice.spec", check=False).stdout, what="explain"
    )
    assert "Container image to run" in explained


def test_instance_becomes_a_resource_graph_and_follows_updates(
    kubectl: Kubectl, webservice_api: dict[str, Any], namespace: str
) -> None:
    kubectl.apply(webservice(namespace, "shop", "  image: ghcr.io/acme/shop:1.0\n"))
    graph = wait_for(lambda: graph_of(kubectl, namespace, "shop"), what="ResourceGraph")
    assert [n["id"] for n in graph["spec"]["nodes"]] == ["deployment", "service", "pdb"]
    assert graph["spec"]["sourceRef"]["kind"] == "WebService"
    owner = graph["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("WebService", "shop", True)
    instance = wait_for(
        lambda: (
            (i := kubectl.get("ws", "shop", "-n", namespace)) and condition(i, "Rendered") and i
        ),
        what="instance status",
    )
    status = instance["status"]
    assert condition(instance, "Validated")["status"] == "True"  # type: ignore[index]
    assert status["renderHash"] == graph["spec"]["metadata"]["renderHash"]
    assert status["resourceGraphRef"] == {"name": "webservice-shop"}
    assert status["totalNodes"] == 3
    assert status["platformRefResolved"]["ref"] == "embedded:webservice@1.1.0"

    kubectl.apply(webservice(namespace, "shop", "  image: ghcr.io/acme/shop:1.0\n  replicas: 1\n"))

    def updated() -> Any:
        found = graph_of(kubectl, namespace, "shop")
        return (
            found
            if [n["id"] for n in found["spec"]["nodes"]] == ["deployment", "service"]
            else None
        )

    graph = wait_for(updated, what="graph without the PodDisruptionBudget")
    assert graph["spec"]["nodes"][0]["object"]["spec"]["replicas"] == 1


def test_api_server_rejects_a_spec_outside_the_schema(
    kubectl: Kubectl, webservice_api: dict[str, Any], namespace: str
) -> None:
    refused = kubectl.run(
        "apply",
        "-f",
        "-",
        stdin=webservice(namespace, "bad", "  image: nginx\n  port: 70000\n"),
        check=False,
    )
    assert refused.returncode != 0
    assert "spec.port" in refused.stderr


RANGE_MODULE = """package ranges

#Metadata: {name: "ranges", version: "0.1.0", kind: "Range"}

#Input: {
	min: int | *1
	// Must not be below min: a relation the CRD schema cannot express.
	max: int & >=min | *3
}

#Render: {
	input: {
		metadata: {name: string, namespace: string, labels?: {...}, annotations?: {...}}
		spec: #Input
	}
	output: nodes: [{
		id: "settings"
		object: {
			apiVersion: "v1"
			kind:       "ConfigMap"
			metadata: name: input.metadata.name
			data: {min: "\\(input.spec.min)", max: "\\(input.spec.max)"}
		}
	}]
}
"""


def test_cross_field_violation_is_reported_and_writes_no_graph(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    kubectl.apply(inline_transform("ranges", RANGE_MODULE))
    ready_transform(kubectl, "ranges")
    instance = (
        "apiVersion: platform.pequod.io/v1alpha1\nkind: Range\n"
        "metadata:\n  name: r\n  namespace: {ns}\nspec:\n{spec}"
    )
    kubectl.apply(instance.format(ns=namespace, spec="  min: 2\n  max: 5\n"))
    graph = wait_for(lambda: graph_of(kubectl, namespace, "r", "range"), what="ResourceGraph")
    render_hash = graph["spec"]["metadata"]["renderHash"]

    kubectl.apply(instance.format(ns=namespace, spec="  min: 9\n  max: 5\n"))

    def invalid() -> Any:
        found = kubectl.get("range", "r", "-n", namespace)
        rendered = condition(found, "Rendered")
        return found if rendered and rendered["status"] == "False" else None

    found = wait_for(invalid, what="Rendered=False")
    message = condition(found, "Rendered")["message"]  # type: ignore[index]
    assert "spec.max" in message
    assert "out of bound >=9" in message
    assert condition(found, "Ready")["status"] == "False"  # type: ignore[index]
    assert found["status"]["phase"] == "Failed"
    time.sleep(1)
    unchanged = graph_of(kubectl, namespace, "r", "range")
    assert unchanged["spec"]["metadata"]["renderHash"] == render_hash
    events = kubectl.get("events", "-n", namespace, "--field-selector", "involvedObject.name=r")
    assert any(e["reason"] == "RenderFailed" and e["type"] == "Warning" for e in events["items"])


def test_second_transform_is_served_without_restart_and_conflicts_are_refused(
    kubectl: Kubectl, webservice_api: dict[str, Any], namespace: str
) -> None:
    kubectl.apply(transform("database", "{type: embedded, ref: database}"))
    ready_transform(kubectl, "database")
    kubectl.apply(
        "apiVersion: platform.pequod.io/v1alpha1\nkind: Database\n"
        f"metadata:\n  name: orders\n  namespace: {namespace}\nspec:\n  storage: 2Gi\n"
    )
    graph = wait_for(lambda: graph_of(kubectl, namespace, "orders", "database"), what="graph")
    assert [n["id"] for n in graph["spec"]["nodes"]] == ["secret", "data", "statefulset", "service"]

    # A second Transform claiming the WebService CRD is refused; the owner keeps working.
    kubectl.apply(transform("webservice-copy", "{type: embedded, ref: webservice@1.0.0}"))
    failed = failed_transform(kubectl, "webservice-copy", "CRDConflict")
    assert "belongs to Transform 'webservice'" in condition(failed, "Ready")["message"]  # type: ignore[index]
    assert condition(kubectl.get("transform", "webservice"), "Ready")["status"] == "True"  # type: ignore[index]
    kubectl.run("delete", "transform", "webservice-copy", "--timeout=60s")
    assert kubectl.get("crd", "webservices.platform.pequod.io") is not None


def test_broken_module_fails_with_the_cue_error(
    kubectl: Kubectl, operator: OperatorProcess
) -> None:
    kubectl.apply(inline_transform("broken", "package broken\n\n#Input: {port: int &\n}\n"))
    failed = failed_transform(kubectl, "broken", "InvalidModule")
    schema_valid = condition(failed, "SchemaValid")
    assert schema_valid is not None
    assert schema_valid["status"] == "False"
    assert "expected operand" in schema_valid["message"]
    assert failed["status"]["phase"] == "Failed"
    kubectl.run("delete", "transform", "broken", "--timeout=60s")


def test_deletion_waits_for_instances_then_removes_the_crd(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    name = f"gadget{uuid.uuid4().hex[:6]}"
    source = RANGE_MODULE.replace("ranges", name).replace(
        'kind: "Range"', 'kind: "Gadget' + name[6:] + '"'
    )
    kind = "Gadget" + name[6:]
    kubectl.apply(inline_transform(name, source))
    ready = ready_transform(kubectl, name)
    crd_name = ready["status"]["generatedCRD"]["name"]
    kubectl.apply(
        f"apiVersion: platform.pequod.io/v1alpha1\nkind: {kind}\n"
        f"metadata:\n  name: g\n  namespace: {namespace}\nspec: {{}}\n"
    )
    kubectl.run("delete", "transform", name, "--wait=false")
    waiting = wait_for(
        lambda: (
            (t := kubectl.get("transform", name))
            and condition(t, "Ready")
            and condition(t, "Ready")["reason"] == "WaitingForInstances"  # type: ignore[index]
            and t
        ),
        what="deletion waiting for instances",
    )
    assert "1 instance(s)" in condition(waiting, "Ready")["message"]  # type: ignore[index]
    assert kubectl.get("crd", crd_name) is not None
    kubectl.run("delete", kind.lower(), "g", "-n", namespace)
    wait_for(lambda: kubectl.get("transform", name) is None, what="Transform gone")
    wait_for(lambda: kubectl.get("crd", crd_name) is None, what="CRD gone")
    assert any(
        "stopped watching" in line and f"transform={name}" in line
        for line in operator.log().splitlines()
    )


def test_configmap_module_change_re_renders(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    source = RANGE_MODULE.replace('kind: "Range"', 'kind: "Span"').replace("ranges", "spans")
    # ConfigMap modules are allowed in the operator's namespace (pequod-system out of a pod).
    kubectl.run("create", "namespace", "pequod-system", check=False)
    config_map = (
        "apiVersion: v1\nkind: ConfigMap\n"
        "metadata:\n  name: spans-module\n  namespace: pequod-system\ndata:\n  module.cue: |\n"
        + "\n".join("    " + line for line in source.splitlines())
        + "\n"
    )
    kubectl.apply(config_map)
    kubectl.apply(transform("spans", "{type: configmap, ref: pequod-system/spans-module}"))
    first = ready_transform(kubectl, "spans")["status"]["resolvedCueRef"]["digest"]
    kubectl.apply(
        "apiVersion: platform.pequod.io/v1alpha1\nkind: Span\n"
        f"metadata:\n  name: s\n  namespace: {namespace}\nspec: {{}}\n"
    )
    graph = wait_for(lambda: graph_of(kubectl, namespace, "s", "span"), what="graph")
    assert graph["spec"]["nodes"][0]["object"]["data"] == {"min": "1", "max": "3"}

    kubectl.apply(config_map.replace("data: {min:", 'data: {edition: "2", min:'))

    def re_rendered() -> Any:
        found = graph_of(kubectl, namespace, "s", "span")
        return found if found["spec"]["nodes"][0]["object"]["data"].get("edition") == "2" else None

    wait_for(re_rendered, what="graph rendered with the new module")
    assert kubectl.get("transform", "spans")["status"]["resolvedCueRef"]["digest"] != first
    kubectl.run("delete", "span", "s", "-n", namespace)
    kubectl.run("delete", "transform", "spans", "--timeout=60s")
    kubectl.run("delete", "configmap", "spans-module", "-n", "pequod-system")


def reconciles(metrics: dict[str, float], controller: str) -> float:
    prefix = f'pequod_reconcile_total{{controller="{controller}"'
    return sum(v for k, v in metrics.items() if k.startswith(prefix))


def reconciled_everything(kubectl: Kubectl, operator: OperatorProcess) -> bool:
    """The operator (since it started) reconciled at least once every Transform, every
    instance of every served kind and every ResourceGraph, and its queues are idle."""
    transforms = kubectl.get("transforms")["items"]
    instances = 0
    for found in transforms:
        crd = (found.get("status") or {}).get("generatedCRD")
        if crd:
            instances += len(kubectl.get(crd["name"], "-A")["items"])
    graphs = len(kubectl.get("resourcegraphs", "-A")["items"])
    try:
        metrics = operator.metrics()
    except OSError:  # /metrics is served a moment after the caches synced
        return False
    idle = all(
        v == 0
        for k, v in metrics.items()
        if k.startswith(("workqueue_depth", "workqueue_unfinished_work_seconds"))
    )
    return (
        reconciles(metrics, "transform") >= len(transforms)
        and reconciles(metrics, "instance") >= instances
        and reconciles(metrics, "resourcegraph") >= graphs
        and idle
    )


def test_restarted_operator_writes_nothing_when_nothing_changed(
    kubectl: Kubectl, webservice_api: dict[str, Any], operator: OperatorProcess, namespace: str
) -> None:
    kubectl.apply(webservice(namespace, "steady", "  image: ghcr.io/acme/steady:1.0\n"))
    wait_for(lambda: graph_of(kubectl, namespace, "steady"), what="graph")
    wait_for(
        lambda: condition(kubectl.get("ws", "steady", "-n", namespace), "Rendered"),
        what="status",
    )

    def versions() -> dict[str, str]:
        found: dict[str, str] = {}
        for kind in ("transforms", "webservices", "resourcegraphs", "events"):
            listing = kubectl.get(kind, "-A")
            for item in listing["items"]:
                metadata = item["metadata"]
                found[f"{kind}/{metadata.get('namespace')}/{metadata['name']}"] = metadata[
                    "resourceVersion"
                ]
        return found

    if operator.plane.has_workloads:
        # Namespaces of earlier tests are still being emptied; their instances leaving change
        # the Transform's instance count, which is not what this test is about.
        wait_for(
            lambda: "Terminating" not in kubectl.run("get", "namespaces").stdout,
            within=180,
            what="earlier test namespaces gone",
        )
    time.sleep(2)
    before = versions()
    # What the restarted operator must find and leave alone; without it the comparison
    # below would hold for an empty cluster too.
    assert {
        "transforms/None/webservice",
        f"webservices/{namespace}/steady",
        f"resourcegraphs/{namespace}/webservice-steady",
    } <= set(before), sorted(before)
    operator.stop()
    operator.start()
    # Not a wait of a fixed length: the restarted operator has reconciled every object it
    # watches, and its queues are empty, before the cluster is compared.
    wait_for(
        lambda: reconciled_everything(kubectl, operator),
        within=120,
        what="the restarted operator reconciling every Transform, instance and graph",
    )
    after = versions()
    changed = {
        k: (before.get(k), after.get(k))
        for k in before.keys() | after.keys()
        if before.get(k) != after.get(k)
    }
    assert changed == {}


def test_breaking_schema_change_is_refused_unless_allowed(
    kubectl: Kubectl, operator: OperatorProcess
) -> None:
    kubectl.apply(inline_transform("levels", RANGE_MODULE.replace('"Range"', '"Level"')))
    ready_transform(kubectl, "levels")
    narrowed = RANGE_MODULE.replace('"Range"', '"Level"').replace(
        "min: int | *1", "min: int & >=0 | *1"
    )
    kubectl.apply(inline_transform("levels", narrowed))
    failed = failed_transform(kubectl, "levels", "BreakingChange")
    message = condition(failed, "Ready")["message"]  # type: ignore[index]
    assert "spec.min: minimum added: 0" in message
    assert "pequod.io/allow-breaking-changes" in message
    crd = kubectl.get("crd", "levels.platform.pequod.io")
    assert (
        "minimum"
        not in crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
            "properties"
        ]["min"]
    )

    kubectl.run("annotate", "transform", "levels", "pequod.io/allow-breaking-changes=true")
    ready_transform(kubectl, "levels")
    crd = kubectl.get("crd", "levels.platform.pequod.io")
    min_schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"
    ]["min"]
    assert min_schema["minimum"] == 0
    kubectl.run("delete", "transform", "levels", "--timeout=60s")


def test_instance_may_pin_only_an_allowed_module_version(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    kubectl.apply(
        transform(
            "pinned",
            "{type: embedded, ref: webservice@1.1.0}",
            "  kind: PinnedService\n"
            "  instancePlatformRefs: [{type: embedded, ref: webservice@1.0.0}]\n",
        )
    )
    # The module's short name "ws" is taken by the webservice Transform's CRD.
    names_refused = failed_transform(kubectl, "pinned", "NamesNotAccepted")
    names_message = condition(names_refused, "Ready")["message"]  # type: ignore[index]
    assert '"ws" is already in use' in names_message
    kubectl.run(
        "patch", "transform", "pinned", "--type=merge", "-p", '{"spec":{"shortNames":["pws"]}}'
    )
    ready_transform(kubectl, "pinned")

    def instance(name: str, ref: str) -> str:
        return (
            "apiVersion: platform.pequod.io/v1alpha1\nkind: PinnedService\n"
            f"metadata:\n  name: {name}\n  namespace: {namespace}\n"
            f"spec:\n  image: ghcr.io/acme/a:1\n  platformRef: {{type: embedded, ref: {ref}}}\n"
        )

    kubectl.apply(instance("old", "webservice@1.0.0"))
    graph = wait_for(lambda: graph_of(kubectl, namespace, "old", "pinnedservice"), what="graph")
    assert [n["id"] for n in graph["spec"]["nodes"]] == ["deployment", "service"]  # no PDB in 1.0.0
    status = wait_for(
        lambda: (kubectl.get("pinnedservice", "old", "-n", namespace) or {}).get("status"),
        what="status",
    )
    assert status["platformRefResolved"]["ref"] == "webservice@1.0.0"

    kubectl.apply(instance("other", "webservice@0.9.0"))

    def refused() -> Any:
        found = kubectl.get("pinnedservice", "other", "-n", namespace)
        validated = condition(found, "Validated")
        return validated if validated and validated["status"] == "False" else None

    validated = wait_for(refused, what="Validated=False")
    assert validated["reason"] == "PlatformRefNotAllowed"
    assert graph_of(kubectl, namespace, "other", "pinnedservice") is None
    kubectl.run("delete", "pinnedservice", "--all", "-n", namespace)
    kubectl.run("delete", "transform", "pinned", "--timeout=60s")


def test_operator_shuts_down_cleanly_on_sigterm(operator: OperatorProcess) -> None:
    assert operator.stop() == 0
    assert "manager stopped" in operator.log()
    operator.start()
