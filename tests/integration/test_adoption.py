"""Adoption against a real control plane with kube-controller-manager, the scheduler and kwok:
objects made by `kubectl apply` (client-side) and `kubectl create` are taken over without
rolling pods, and only when both the Transform and the instance ask; another instance's object
is never taken; Observe never writes and keeps; a dry run writes nothing and lists the
changes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import kubernetes
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

pytestmark = pytest.mark.cluster

LEGACY_MODULE = """\
package legacy

#Input: {
	image: string | *"registry.example/web:1"
	replicas: int | *2
	greeting: string | *"hello"
	// The name of the objects (default: the instance's).
	objectName?: string
}
#Render: {
	input: {metadata: {name: string, namespace: string, labels?: _, annotations?: _}, spec: #Input}
	let base = *input.spec.objectName | input.metadata.name
	output: nodes: [{
		id: "config"
		object: {
			apiVersion: "v1", kind: "ConfigMap", metadata: name: "\\(base)-config"
			data: greeting: input.spec.greeting
		}
	}, {
		id: "web"
		object: {
			apiVersion: "apps/v1", kind: "Deployment", metadata: name: base
			spec: {
				replicas: input.spec.replicas
				selector: matchLabels: app: base
				template: {
					metadata: labels: app: base
					spec: containers: [{name: "web", image: input.spec.image}]
				}
			}
		}
		dependsOn: ["config"]
	}, {
		id: "service"
		object: {
			apiVersion: "v1", kind: "Service", metadata: name: base
			spec: {selector: app: base, ports: [{port: 80, targetPort: 8080}]}
		}
	}]
}
"""


def legacy_objects(name: str, namespace: str, greeting: str = "hello") -> str:
    """What a team deployed before Pequod: the objects the module renders for an instance
    ``name``, by hand."""
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: web, image: "registry.example/web:1"}}]
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}-config, namespace: {namespace}}}
data: {{greeting: {greeting}, owner: legacy-team}}
"""


def instance(
    namespace: str, name: str, *, adopt: str = "", kind: str = "Legacy", spec: str = "{}"
) -> str:
    annotations = f"\n  annotations: {{pequod.io/adopt: '{adopt}'}}" if adopt else ""
    return (
        f"apiVersion: platform.pequod.io/v1alpha1\nkind: {kind}\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}{annotations}\nspec: {spec}\n"
    )


@pytest.fixture(scope="module")
def legacy_api(
    kubectl: Kubectl, workload_control_plane: ControlPlane, operator: OperatorProcess
) -> Iterator[None]:
    """Two kinds of the same module: Legacy may adopt either way, StrictLegacy may only take
    ownership."""
    kubectl.apply(
        inline_transform(
            "legacy",
            LEGACY_MODULE,
            "  kind: Legacy\n  adoption:\n    allowedStrategies: [TakeOwnership, Observe]\n",
        )
    )
    kubectl.apply(
        inline_transform(
            "strict-legacy",
            LEGACY_MODULE,
            "  kind: StrictLegacy\n  adoption:\n    allowedStrategies: [TakeOwnership]\n",
        )
    )
    ready_transform(kubectl, "legacy")
    ready_transform(kubectl, "strict-legacy")
    try:
        yield
    finally:
        kubectl.run("delete", "transform", "legacy", "strict-legacy", "--wait=false")


def graph(kubectl: Kubectl, namespace: str, name: str, kind: str = "legacy") -> Any:
    return kubectl.get("resourcegraph", f"{kind}-{name}", "-n", namespace)


def nodes(found: Any) -> dict[str, dict[str, Any]]:
    return {n["id"]: n for n in ((found or {}).get("status") or {}).get("nodes") or []}


def versions(kubectl: Kubectl, namespace: str, name: str) -> dict[str, str]:
    """resourceVersion of each legacy object."""
    return {
        kind: kubectl.get(kind, object_name, "-n", namespace)["metadata"]["resourceVersion"]
        for kind, object_name in (
            ("deployment", name),
            ("service", name),
            ("configmap", f"{name}-config"),
        )
    }


def running(kubectl: Kubectl, namespace: str, name: str) -> tuple[set[str], set[str]]:
    """The Deployment's ReplicaSets and its pods' uids, once both of its pods exist."""

    def found() -> tuple[set[str], set[str]] | None:
        sets = kubectl.get("replicasets", "-n", namespace, "-l", f"app={name}")["items"]
        pods = kubectl.get("pods", "-n", namespace, "-l", f"app={name}")["items"]
        if len(pods) != 2:
            return None
        return {s["metadata"]["name"] for s in sets}, {p["metadata"]["uid"] for p in pods}

    result: tuple[set[str], set[str]] = wait_for(found, within=120, what=f"{name}'s pods")
    return result


def owners(obj: dict[str, Any], field_path: tuple[str, ...]) -> set[str]:
    """The managers whose fieldsV1 hold ``field_path`` (``("f:spec", "f:replicas")``)."""
    found = set()
    for entry in obj["metadata"].get("managedFields") or []:
        fields = entry.get("fieldsV1") or {}
        for part in field_path:
            fields = fields.get(part) if isinstance(fields, dict) else None
        if fields is not None:
            found.add(entry["manager"])
    return found


def events(kubectl: Kubectl, namespace: str, kind: str, name: str, reason: str) -> list[str]:
    listing = kubectl.get(
        "events",
        "-n",
        namespace,
        "--field-selector",
        f"involvedObject.kind={kind},involvedObject.name={name},reason={reason}",
    )
    return [e["message"] for e in listing["items"]]


class PhaseWatch:
    """Every phase each node of a graph was reported in (a watch sees every status write,
    however short-lived the phase)."""

    def __init__(self, api: kubernetes.client.ApiClient, namespace: str, name: str) -> None:
        self.seen: dict[str, list[str]] = {}
        self._stopped = threading.Event()
        self._watch = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
        self._thread = threading.Thread(
            target=self._run,
            args=(kubernetes.client.CustomObjectsApi(api), namespace, name),
            daemon=True,
        )
        self._thread.start()

    def _run(self, custom: Any, namespace: str, name: str) -> None:
        # Short watches, each from where the last one ended, so that stop() is prompt and no
        # write falls between two of them.
        version: str | None = None
        while not self._stopped.is_set():
            for event in self._watch.stream(  # type: ignore[no-untyped-call]
                custom.list_namespaced_custom_object,
                "platform.pequod.io",
                "v1alpha1",
                namespace,
                "resourcegraphs",
                field_selector=f"metadata.name={name}",
                timeout_seconds=1,
                **({"resource_version": version} if version else {}),
            ):
                version = event["object"]["metadata"]["resourceVersion"]
                for node in (event["object"].get("status") or {}).get("nodes") or []:
                    phases = self.seen.setdefault(node["id"], [])
                    if not phases or phases[-1] != node.get("phase"):
                        phases.append(node.get("phase"))

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(10)


def test_objects_of_kubectl_are_adopted_without_rolling_pods_only_when_asked(
    kubectl: Kubectl,
    legacy_api: None,
    namespace: str,
    sync_api_client: kubernetes.client.ApiClient,
) -> None:
    # Deployment and Service by `kubectl apply` (client-side), the ConfigMap by `kubectl
    # create`, with a greeting the module renders otherwise and a key it does not render.
    objects = legacy_objects("shop", namespace, greeting="hi").split("---\n")
    kubectl.apply("---\n".join(objects[:2]))
    kubectl.run(
        "create",
        "configmap",
        "shop-config",
        "-n",
        namespace,
        "--from-literal=greeting=hi",
        "--from-literal=owner=legacy-team",
    )
    replica_sets, pods = running(kubectl, namespace, "shop")
    before = versions(kubectl, namespace, "shop")
    original = kubectl.get("deployment", "shop", "-n", namespace)

    # Without the annotation: the collision error of old, and nothing written.
    kubectl.apply(instance(namespace, "shop"))
    failed = wait_for(
        lambda: (
            (found := graph(kubectl, namespace, "shop"))
            and (found.get("status") or {}).get("phase") == "Failed"
            and found
        ),
        what="the graph Failed",
    )
    assert "not managed by Pequod" in nodes(failed)["config"]["lastError"]
    assert "pequod.io/adopt" in nodes(failed)["config"]["lastError"]
    assert versions(kubectl, namespace, "shop") == before

    # Asked for: taken over, pods not rolled.
    watch = PhaseWatch(sync_api_client, namespace, "legacy-shop")
    try:
        kubectl.run("annotate", "legacy", "shop", "-n", namespace, "pequod.io/adopt=TakeOwnership")
        ready = wait_for(
            lambda: (
                (found := kubectl.get("legacy", "shop", "-n", namespace))
                and (condition(found, "Ready") or {}).get("status") == "True"
                and found
            ),
            within=120,
            what="the instance Ready",
        )
        wait_for(lambda: watch.seen.get("web", [])[-1:] == ["Ready"], what="web Ready")
    finally:
        watch.stop()
    for node_id in ("config", "web", "service"):
        assert "Adopted" in watch.seen[node_id], watch.seen
    assert ready["status"]["adoptedNodes"] == 3
    assert running(kubectl, namespace, "shop") == (replica_sets, pods)
    deployment = kubectl.get("deployment", "shop", "-n", namespace, "--show-managed-fields")
    # Pequod's annotations bump the generation (they are copied to ReplicaSets), but the
    # template is the same: no new revision, no new ReplicaSet.
    assert deployment["spec"]["template"] == original["spec"]["template"]
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "pequod"
    # Pequod alone owns what it renders; what it does not render stays with its owner.
    assert owners(deployment, ("f:spec", "f:replicas")) == {"pequod"}
    assert owners(deployment, ("f:spec", "f:template", "f:metadata", "f:labels")) == {"pequod"}
    config = kubectl.get("configmap", "shop-config", "-n", namespace, "--show-managed-fields")
    assert config["data"] == {"greeting": "hello", "owner": "legacy-team"}
    assert owners(config, ("f:data", "f:greeting")) == {"pequod"}
    assert owners(config, ("f:data", "f:owner")) == {"kubectl-create"}

    found = graph(kubectl, namespace, "shop")
    assert nodes(found)["web"]["adoptedFrom"] == ["kubectl-client-side-apply"]
    assert nodes(found)["config"]["adoptedFrom"] == ["kubectl-create"]
    assert nodes(found)["web"]["adoptedAt"]
    assert {e["name"] for e in found["status"]["inventory"]} == {"shop", "shop-config"}
    messages = events(kubectl, namespace, "Legacy", "shop", "Adopted")
    assert len(messages) == 3, messages
    assert any(
        "adopted ConfigMap shop-config (node config) from kubectl-create; changed data.greeting"
        in m
        for m in messages
    ), messages
    assert any(
        "adopted Deployment shop (node web) from kubectl-client-side-apply; no field changed" in m
        for m in messages
    ), messages
    assert events(kubectl, namespace, "Deployment", "shop", "Adopted")

    # An ordinary member now: drift is corrected, and it is deleted with the instance.
    kubectl.run("scale", "deployment", "shop", "-n", namespace, "--replicas=5")
    wait_for(
        lambda: kubectl.get("deployment", "shop", "-n", namespace)["spec"]["replicas"] == 2,
        what="drift corrected",
    )
    kubectl.run("delete", "legacy", "shop", "-n", namespace, "--timeout=120s")
    for kind, object_name in (("deployment", "shop"), ("configmap", "shop-config")):
        assert kubectl.get(kind, object_name, "-n", namespace) is None


def test_an_object_of_another_instance_is_never_adopted(
    kubectl: Kubectl, legacy_api: None, namespace: str
) -> None:
    kubectl.apply(instance(namespace, "first"))
    wait_for(
        lambda: (
            (condition(kubectl.get("legacy", "first", "-n", namespace), "Ready") or {}).get(
                "status"
            )
            == "True"
        ),
        within=120,
        what="the first instance Ready",
    )
    before = versions(kubectl, namespace, "first")
    kubectl.apply(
        instance(
            namespace,
            "second",
            adopt="TakeOwnership",
            spec='{objectName: first, greeting: "mine"}',
        )
    )
    failed = wait_for(
        lambda: (
            (found := graph(kubectl, namespace, "second"))
            and (found.get("status") or {}).get("phase") == "Failed"
            and found
        ),
        what="the second graph Failed",
    )
    error = nodes(failed)["config"]["lastError"]
    assert "it belongs to Legacy first" in error
    assert "never takes over another instance's object" in error
    assert versions(kubectl, namespace, "first") == before
    kubectl.run("delete", "legacy", "second", "first", "-n", namespace, "--timeout=120s")


def test_observe_reads_never_writes_and_keeps(
    kubectl: Kubectl, legacy_api: None, namespace: str
) -> None:
    kubectl.run("create", "configmap", "watcher-config", "-n", namespace, "--from-literal=a=b")
    before = kubectl.get("configmap", "watcher-config", "-n", namespace)["metadata"]
    kubectl.apply(instance(namespace, "watcher", adopt="config=Observe"))
    ready = wait_for(
        lambda: (
            (found := kubectl.get("legacy", "watcher", "-n", namespace))
            and (condition(found, "Ready") or {}).get("status") == "True"
            and found
        ),
        within=120,
        what="the instance Ready",
    )
    assert "adoptedNodes" not in ready["status"]
    found = graph(kubectl, namespace, "watcher")
    assert "observed (never written)" in nodes(found)["config"]["readyDetails"]
    assert "watcher-config" not in {e["name"] for e in found["status"]["inventory"]}
    # A change of the instance applies again, and still leaves the observed object alone.
    kubectl.run(
        "patch",
        "legacy",
        "watcher",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"replicas":1}}',
    )
    wait_for(
        lambda: kubectl.get("deployment", "watcher", "-n", namespace)["spec"]["replicas"] == 1,
        what="the change applied",
    )
    kubectl.run("delete", "legacy", "watcher", "-n", namespace, "--timeout=120s")
    assert kubectl.get("deployment", "watcher", "-n", namespace) is None
    after = kubectl.get("configmap", "watcher-config", "-n", namespace)["metadata"]
    assert after["resourceVersion"] == before["resourceVersion"]
    assert after.get("labels") is None


def test_an_observed_object_that_does_not_exist_is_waited_for_never_created(
    kubectl: Kubectl, legacy_api: None, namespace: str
) -> None:
    kubectl.apply(instance(namespace, "early", adopt="config=Observe"))
    waiting = wait_for(
        lambda: (
            (found := graph(kubectl, namespace, "early"))
            and nodes(found).get("config", {}).get("phase") == "Waiting"
            and found
        ),
        what="the observed node Waiting",
    )
    assert "never creates it" in nodes(waiting)["config"]["readyDetails"]
    assert nodes(waiting)["web"]["phase"] == "Waiting"  # its dependent
    assert kubectl.get("configmap", "early-config", "-n", namespace) is None
    kubectl.run("create", "configmap", "early-config", "-n", namespace, "--from-literal=a=b")
    wait_for(
        lambda: kubectl.get("deployment", "early", "-n", namespace), within=60, what="web applied"
    )
    kubectl.run("delete", "legacy", "early", "-n", namespace, "--timeout=120s")
    assert kubectl.get("configmap", "early-config", "-n", namespace) is not None


@pytest.mark.parametrize(
    ("kind", "adopt", "reason", "says"),
    [
        ("StrictLegacy", "config=Observe", "AdoptionNotAllowed", "does not allow"),
        ("Legacy", "Everything", "InvalidAdoption", "is not a strategy"),
        ("Legacy", "cfg=Observe", "InvalidAdoption", "names node cfg, which the render"),
    ],
)
def test_an_adoption_not_allowed_or_malformed_is_refused_before_anything_is_written(
    kubectl: Kubectl,
    legacy_api: None,
    namespace: str,
    kind: str,
    adopt: str,
    reason: str,
    says: str,
) -> None:
    kubectl.apply(instance(namespace, "refused", adopt=adopt, kind=kind))
    validated = wait_for(
        lambda: condition(kubectl.get(kind.lower(), "refused", "-n", namespace), "Validated"),
        what="the Validated condition",
    )
    assert validated["status"] == "False"
    assert validated["reason"] == reason
    assert says in validated["message"]
    assert graph(kubectl, namespace, "refused", kind.lower()) is None
    kubectl.run("delete", kind.lower(), "refused", "-n", namespace, "--timeout=60s")


def test_a_dry_run_of_an_adoption_writes_nothing_and_lists_the_changes(
    kubectl: Kubectl, legacy_api: None, namespace: str
) -> None:
    kubectl.apply(legacy_objects("trial", namespace, greeting="hi"))
    before = versions(kubectl, namespace, "trial")
    kubectl.apply(
        instance(namespace, "trial", adopt="TakeOwnership").replace(
            "annotations: {", "annotations: {pequod.io/dry-run: 'true', "
        )
    )
    planned = wait_for(
        lambda: (
            (found := graph(kubectl, namespace, "trial"))
            and (found.get("status") or {}).get("phase") == "DryRun"
            and found
        ),
        what="the dry run",
    )
    details = nodes(planned)["config"]["readyDetails"]
    assert details == "would adopt from kubectl-client-side-apply; would change data.greeting"
    assert "no field would change" in nodes(planned)["web"]["readyDetails"]
    assert versions(kubectl, namespace, "trial") == before
    deployment = kubectl.get("deployment", "trial", "-n", namespace)
    assert "app.kubernetes.io/managed-by" not in (deployment["metadata"].get("labels") or {})
    kubectl.run("delete", "legacy", "trial", "-n", namespace, "--timeout=120s")
    assert versions(kubectl, namespace, "trial") == before
