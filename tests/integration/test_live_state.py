"""Modules that see the world, against a real control plane: values known only after apply
reach the objects that need them (the node waits until then), the module's status fields
appear in the instance and in `kubectl get` columns, and references to other objects and
instances are read, followed, refused where the Transform does not allow them, and reported
when missing, without deleting anything."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pequod.controlplane import ControlPlane
from tests.operator_harness import (
    Kubectl,
    OperatorProcess,
    condition,
    inline_transform,
    ready_transform,
    transform,
    wait_for,
)

pytestmark = pytest.mark.cluster

ADDRESSED_MODULE = """\
package addressed

#Metadata: {
	kind: "Addressed"
	printerColumns: [{name: "ADDRESS", type: "string", jsonPath: ".status.address"}]
}
#Input: {
	port: int | *80
	// A ConfigMap whose data.greeting is copied, in a namespace of its own.
	settings?: {namespace?: string, name: string}
	// A Secret whose data this (wrongly) reads.
	secretData?: string
}
#Status: {
	// Where the Service answers, inside the cluster.
	address?: string
	// The load balancer's address, once it has one.
	external?: string
}
#Observe: {
	input: _
	nodes: service: ["spec.clusterIP", "status.loadBalancer.ingress"]
	if input.spec.settings != _|_ {
		references: settings: {
			apiVersion: "v1"
			kind:       "ConfigMap"
			name:       input.spec.settings.name
			if input.spec.settings.namespace != _|_ {namespace: input.spec.settings.namespace}
			paths: ["data.greeting"]
		}
	}
	if input.spec.secretData != _|_ {
		references: secret: {
			apiVersion: "v1", kind: "Secret", name: input.spec.secretData, paths: ["data.password"]
		}
	}
}
#Render: {
	input: {metadata: {name: string, namespace: string, labels?: _, annotations?: _}, spec: #Input}
	observed: {nodes: [string]: _, references: [string]: _}
	let ip = observed.nodes.service.spec.clusterIP
	let lbIngress = observed.nodes.service.status.loadBalancer.ingress
	output: nodes: [{
		id: "service"
		object: {
			apiVersion: "v1", kind: "Service", metadata: name: input.metadata.name
			spec: {
				type: "LoadBalancer"
				ports: [{port: input.spec.port}]
				selector: app: input.metadata.name
			}
		}
	}, {
		id: "address"
		object: {
			apiVersion: "v1", kind: "ConfigMap", metadata: name: "\\(input.metadata.name)-address"
			data: {
				address: "\\(ip):\\(input.spec.port)"
				if input.spec.settings != _|_ {greeting: observed.references.settings.data.greeting}
			}
		}
		dependsOn: ["service"]
	}, {
		id: "external"
		object: {
			apiVersion: "v1", kind: "ConfigMap", metadata: name: "\\(input.metadata.name)-external"
			data: ingress: *(lbIngress & [...])[0].ip | lbIngress
		}
	}, {
		id: "after-external"
		object: {
			apiVersion: "v1", kind: "ConfigMap", metadata: name: "\\(input.metadata.name)-after"
		}
		dependsOn: ["external"]
	}]
	status: #Status & {
		address: "\\(ip):\\(input.spec.port)"
		if (lbIngress & [...]) != _|_ {external: lbIngress[0].ip}
	}
}
"""


def addressed(namespace: str, name: str, spec: str = "{}") -> str:
    return (
        "apiVersion: platform.pequod.io/v1alpha1\nkind: Addressed\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\nspec: {spec}\n"
    )


@pytest.fixture(scope="module")
def addressed_api(kubectl: Kubectl, operator: OperatorProcess) -> dict[str, Any]:
    kubectl.apply(inline_transform("addressed", ADDRESSED_MODULE))
    return ready_transform(kubectl, "addressed")


def graph(kubectl: Kubectl, namespace: str, name: str) -> Any:
    return kubectl.get("resourcegraph", f"addressed-{name}", "-n", namespace)


def node_status(found: Any, node_id: str) -> dict[str, Any]:
    if not found:
        return {}
    nodes = (found.get("status") or {}).get("nodes") or []
    return next((n for n in nodes if n["id"] == node_id), {})


def columns(kubectl: Kubectl, *arguments: str) -> dict[str, str]:
    """The header and first row of `kubectl get`, as {column: value}."""
    lines = kubectl.run("get", *arguments).stdout.splitlines()
    header, row = lines[0], lines[1]
    starts = [i for i, c in enumerate(header) if c != " " and (i == 0 or header[i - 1] == " ")]
    ends = [*starts[1:], None]
    return {header[s:e].strip(): row[s:e].strip() for s, e in zip(starts, ends, strict=True)}


def test_a_value_known_after_apply_reaches_the_node_that_waits_for_it(
    kubectl: Kubectl, addressed_api: dict[str, Any], namespace: str
) -> None:
    kubectl.apply(addressed(namespace, "web"))
    service = wait_for(lambda: kubectl.get("service", "web", "-n", namespace), what="the Service")
    cluster_ip = service["spec"]["clusterIP"]

    # The clusterIP exists once the Service is applied: the ConfigMap gets it.
    address = wait_for(
        lambda: kubectl.get("configmap", "web-address", "-n", namespace), what="address"
    )
    assert address["data"] == {"address": f"{cluster_ip}:80"}

    # The load balancer's address does not exist yet: that node waits, its dependent too.
    def waiting() -> Any:
        found = graph(kubectl, namespace, "web")
        return found if node_status(found, "external").get("phase") == "Waiting" else None

    found = wait_for(waiting, what="the external node Waiting")
    assert (
        "nodes.service.status.loadBalancer.ingress"
        in node_status(found, "external")["readyDetails"]
    )
    assert node_status(found, "after-external")["phase"] == "Waiting"
    assert kubectl.get("configmap", "web-external", "-n", namespace) is None
    assert found["status"]["observed"]["service"] == {"spec": {"clusterIP": cluster_ip}}

    # The module's status is the instance's, and `kubectl get` shows it.
    instance = wait_for(
        lambda: (
            (found := kubectl.get("addressed", "web", "-n", namespace))
            and (found.get("status") or {}).get("address")
            and found
        ),
        what="status.address",
    )
    assert instance["status"]["address"] == f"{cluster_ip}:80"
    assert "external" not in instance["status"]  # pending: left out
    assert columns(kubectl, "addressed", "web", "-n", namespace)["ADDRESS"] == f"{cluster_ip}:80"

    # A change of a field the render does not read renders nothing again.
    rendered_at = found["spec"]["metadata"]["renderedAt"]
    kubectl.run("annotate", "service", "web", "-n", namespace, "unrelated=1")

    # The load balancer gets an address: the node is applied with it.
    kubectl.run(
        "patch",
        "service",
        "web",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}]}}}),
    )
    external = wait_for(
        lambda: kubectl.get("configmap", "web-external", "-n", namespace), what="external"
    )
    assert "203.0.113.7" in external["data"]["ingress"]
    wait_for(lambda: kubectl.get("configmap", "web-after", "-n", namespace), what="its dependent")
    instance = wait_for(
        lambda: (
            (found := kubectl.get("addressed", "web", "-n", namespace))
            and (found.get("status") or {}).get("external")
            and found
        ),
        what="status.external",
    )
    assert instance["status"]["external"] == "203.0.113.7"
    assert graph(kubectl, namespace, "web")["spec"]["metadata"]["renderedAt"] != rendered_at


def test_references_are_read_followed_and_reported_when_missing(
    kubectl: Kubectl, addressed_api: dict[str, Any], namespace: str
) -> None:
    kubectl.apply(addressed(namespace, "greeter", "{settings: {name: shared}}"))

    # Missing: a condition names it, and nothing is rendered.
    def unresolved() -> Any:
        found = kubectl.get("addressed", "greeter", "-n", namespace)
        ref = condition(found, "ReferencesResolved")
        return ref if ref and ref["status"] == "False" else None

    missing = wait_for(unresolved, what="ReferencesResolved=False")
    assert missing["reason"] == "ReferenceNotFound"
    assert f"ConfigMap {namespace}/shared not found" in missing["message"]
    assert graph(kubectl, namespace, "greeter") is None

    # It appears: the instance renders with it.
    shared = (
        "apiVersion: v1\nkind: ConfigMap\n"
        f"metadata:\n  name: shared\n  namespace: {namespace}\ndata:\n  greeting: hello\n"
    )
    kubectl.apply(shared)

    def greeting(expected: str) -> Any:
        found = kubectl.get("configmap", "greeter-address", "-n", namespace)
        return found if found and found["data"].get("greeting") == expected else None

    wait_for(lambda: greeting("hello"), what="the greeting read")
    ready = wait_for(
        lambda: (
            (
                c := condition(
                    kubectl.get("addressed", "greeter", "-n", namespace), "ReferencesResolved"
                )
            )
            and c["status"] == "True"
            and c
        ),
        what="ReferencesResolved=True",
    )
    assert f"ConfigMap {namespace}/shared" in ready["message"]

    # It changes: the instance renders again.
    kubectl.apply(shared.replace("hello", "bonjour"))
    wait_for(lambda: greeting("bonjour"), what="the new greeting")

    # It goes: a condition names it, and every object stays.
    kubectl.run("delete", "configmap", "shared", "-n", namespace)
    gone = wait_for(unresolved, what="ReferencesResolved=False after the deletion")
    assert gone["reason"] == "ReferenceNotFound"
    assert greeting("bonjour") is not None
    assert kubectl.get("service", "greeter", "-n", namespace) is not None


def test_a_reference_outside_the_allowed_namespaces_is_refused(
    kubectl: Kubectl, addressed_api: dict[str, Any], namespace: str
) -> None:
    kubectl.apply(addressed(namespace, "nosy", "{settings: {namespace: kube-system, name: x}}"))

    def refused() -> Any:
        found = kubectl.get("addressed", "nosy", "-n", namespace)
        ref = condition(found, "ReferencesResolved")
        return found if ref and ref["status"] == "False" else None

    found = refused_instance = wait_for(refused, what="the reference refused")
    ref = condition(refused_instance, "ReferencesResolved")
    assert ref is not None
    assert ref["reason"] == "ReferenceNotAllowed"
    assert "kube-system" in ref["message"]
    assert found["status"]["phase"] == "Failed"
    assert graph(kubectl, namespace, "nosy") is None


def test_secret_data_is_never_read(
    kubectl: Kubectl, addressed_api: dict[str, Any], namespace: str
) -> None:
    kubectl.run(
        "create", "secret", "generic", "creds", "-n", namespace, "--from-literal=password=s3cret"
    )
    kubectl.apply(addressed(namespace, "thief", "{secretData: creds}"))

    def refused() -> Any:
        found = kubectl.get("addressed", "thief", "-n", namespace)
        rendered = condition(found, "Rendered")
        return rendered if rendered and rendered["status"] == "False" else None

    rendered = wait_for(refused, what="the Secret read refused")
    assert rendered["reason"] == "ObserveRefused"
    assert "Secret's data" in rendered["message"]
    assert graph(kubectl, namespace, "thief") is None
    assert (
        "s3cret"
        not in kubectl.run("get", "addressed", "thief", "-n", namespace, "-o", "yaml").stdout
    )


def test_a_webservice_reads_its_database(
    kubectl: Kubectl,
    operator: OperatorProcess,
    workload_control_plane: ControlPlane,
    namespace: str,
) -> None:
    # With kube-controller-manager: a deleted Database's claim goes (pvc-protection).
    kubectl.apply(transform("database", "{type: embedded, ref: database@1.1.0}"))
    kubectl.apply(transform("webservice", "{type: embedded, ref: webservice@1.2.0}"))
    try:
        ready_transform(kubectl, "database")
        ready_transform(kubectl, "webservice")
        _webservice_reads_its_database(kubectl, namespace)
    finally:
        # Other tests serve these kinds from other module versions.
        for name in ("webservice", "database"):
            kubectl.run("delete", "transform", name, "--timeout=120s", check=False)


def _webservice_reads_its_database(kubectl: Kubectl, namespace: str) -> None:
    kubectl.apply(
        "apiVersion: platform.pequod.io/v1alpha1\nkind: Database\n"
        f"metadata:\n  name: orders\n  namespace: {namespace}\nspec: {{}}\n"
    )
    kubectl.apply(
        "apiVersion: platform.pequod.io/v1alpha1\nkind: WebService\n"
        f"metadata:\n  name: shop\n  namespace: {namespace}\n"
        "spec:\n  image: nginx:1.27\n  database: orders\n"
    )

    def environment(endpoint: str) -> Any:
        deployment = kubectl.get("deployment", "shop", "-n", namespace)
        if not deployment:
            return None
        env = deployment["spec"]["template"]["spec"]["containers"][0].get("env") or []
        values = {e["name"]: e for e in env}
        found = values.get("DATABASE_ENDPOINT", {}).get("value")
        return values if found == endpoint else None

    endpoint = f"orders.{namespace}.svc.cluster.local:5432"
    env = wait_for(lambda: environment(endpoint), what="the database's endpoint in the env")
    assert env["DATABASE_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "orders",
        "key": "password",
    }
    explained = kubectl.run("explain", "webservices.status.url").stdout
    assert "URL the service answers on" in explained
    url = f"http://shop.{namespace}.svc.cluster.local:80"
    wait_for(
        lambda: columns(kubectl, "ws", "shop", "-n", namespace).get("URL") == url,
        what="the URL column",
    )
    assert columns(kubectl, "db", "orders", "-n", namespace)["ENDPOINT"] == endpoint

    # The Database changes (another engine, another port): the WebService follows.
    kubectl.run(
        "patch",
        "database",
        "orders",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec": {"engine": "mysql"}}',
    )
    wait_for(
        lambda: environment(f"orders.{namespace}.svc.cluster.local:3306"),
        what="the new endpoint in the env",
    )

    # The Database goes: the WebService says so, and keeps its objects.
    kubectl.run("delete", "database", "orders", "-n", namespace, "--timeout=60s")

    def unresolved() -> Any:
        ref = condition(kubectl.get("ws", "shop", "-n", namespace), "ReferencesResolved")
        return ref if ref and ref["status"] == "False" else None

    ref = wait_for(unresolved, what="the missing Database named")
    assert ref["reason"] == "ReferenceNotFound"
    assert f"Database {namespace}/orders not found" in ref["message"]
    assert kubectl.get("deployment", "shop", "-n", namespace) is not None
    kubectl.run("delete", "ws", "shop", "-n", namespace, "--timeout=60s")
