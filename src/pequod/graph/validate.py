"""Checks a module's ``output`` and turns it into a :class:`Graph`, or says precisely what is
wrong with it. Nothing of a graph that fails here is ever applied."""

from __future__ import annotations

import graphlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from pequod.cue.diagnostics import Diagnostic
from pequod.graph.cel_syntax import cel_syntax_error
from pequod.graph.model import SEVERITY_ERROR, Graph, Node, Violation
from pequod.graph.shape import OUTPUT_SCHEMA

# Built-in kinds without a namespace, by (API group, kind). The executor checks again with the
# API server's discovery, which also knows custom resources.
CLUSTER_SCOPED_KINDS = frozenset(
    {
        ("", "Namespace"),
        ("", "Node"),
        ("", "PersistentVolume"),
        ("rbac.authorization.k8s.io", "ClusterRole"),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
        ("storage.k8s.io", "StorageClass"),
        ("storage.k8s.io", "CSIDriver"),
        ("storage.k8s.io", "CSINode"),
        ("storage.k8s.io", "VolumeAttachment"),
        ("apiextensions.k8s.io", "CustomResourceDefinition"),
        ("apiregistration.k8s.io", "APIService"),
        ("scheduling.k8s.io", "PriorityClass"),
        ("networking.k8s.io", "IngressClass"),
        ("node.k8s.io", "RuntimeClass"),
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
        ("certificates.k8s.io", "CertificateSigningRequest"),
        ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    }
)
_VALIDATOR = jsonschema.Draft202012Validator(OUTPUT_SCHEMA)


class GraphError(Exception):
    """The rendered graph is invalid; ``diagnostics`` lists every problem with its path."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__(
            "the rendered graph is invalid:\n" + "\n".join(f"  {d}" for d in diagnostics)
        )


@dataclass(frozen=True)
class NamespacePolicy:
    """Where rendered objects may go: the instance's namespace, plus what the Transform allows
    (``"*"`` in ``allowed_namespaces`` means any namespace)."""

    instance_namespace: str
    allowed_namespaces: tuple[str, ...] = field(default=())
    allow_cluster_scoped: bool = False

    def allows(self, namespace: str) -> bool:
        return (
            namespace == self.instance_namespace
            or namespace in self.allowed_namespaces
            or "*" in self.allowed_namespaces
        )


def api_group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


def is_cluster_scoped(obj: dict[str, Any]) -> bool:
    return (api_group(obj.get("apiVersion", "")), obj.get("kind", "")) in CLUSTER_SCOPED_KINDS


def build_graph(output: Any, policy: NamespacePolicy, *, source: str = "module") -> Graph:
    """Validates ``output`` (``#Render.output``) and returns the graph with namespaces set."""
    shape_errors = sorted(_VALIDATOR.iter_errors(output), key=lambda e: list(e.absolute_path))
    if shape_errors:
        raise GraphError([_shape_diagnostic(error) for error in shape_errors])
    problems: list[Diagnostic] = []
    nodes = [_node(raw, index, policy, problems) for index, raw in enumerate(output["nodes"])]
    _check_identity(nodes, problems)
    _check_dependencies(nodes, problems)
    if problems:
        raise GraphError(problems)
    violations = tuple(
        Violation(v["path"], v["message"], v.get("severity", SEVERITY_ERROR), source)
        for v in output.get("violations", [])
    )
    return Graph(tuple(nodes), violations)


def _shape_diagnostic(error: jsonschema.ValidationError) -> Diagnostic:
    return Diagnostic(error.message, "output" + "".join(_path_part(p) for p in error.absolute_path))


def _path_part(part: str | int) -> str:
    return f"[{part}]" if isinstance(part, int) else f".{part}"


def _node(
    raw: dict[str, Any], index: int, policy: NamespacePolicy, problems: list[Diagnostic]
) -> Node:
    where = f"output.nodes[{index}]"
    obj = raw["object"]
    metadata = obj["metadata"]
    if is_cluster_scoped(obj):
        if "namespace" in metadata:
            problems.append(
                Diagnostic(f"{obj['kind']} is cluster-scoped and takes no namespace", where)
            )
        elif not policy.allow_cluster_scoped:
            problems.append(
                Diagnostic(
                    f"{obj['kind']} {metadata['name']!r} is cluster-scoped, and the Transform "
                    "does not allow cluster-scoped objects (spec.allowClusterScoped)",
                    where,
                )
            )
    else:
        namespace = metadata.setdefault("namespace", policy.instance_namespace)
        if not policy.allows(namespace):
            problems.append(
                Diagnostic(
                    f"{obj['kind']} {metadata['name']!r} is in namespace {namespace!r}, but "
                    f"objects of this instance may only go to {policy.instance_namespace!r} "
                    "(the Transform's spec.allowedNamespaces can allow more)",
                    f"{where}.object.metadata.namespace",
                )
            )
    for position, predicate in enumerate(raw.get("readyWhen", [])):
        if predicate["type"] == "CEL":
            error = cel_syntax_error(predicate["expression"])
            if error:
                problems.append(
                    Diagnostic(f"invalid CEL: {error}", f"{where}.readyWhen[{position}].expression")
                )
    return Node.from_dict(raw)


def object_key(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    """What identifies an object in a cluster: API group, kind, namespace, name."""
    metadata = obj["metadata"]
    return (
        api_group(obj["apiVersion"]),
        obj["kind"],
        metadata.get("namespace", ""),
        metadata["name"],
    )


def _check_identity(nodes: Iterable[Node], problems: list[Diagnostic]) -> None:
    seen_ids: dict[str, int] = {}
    seen_objects: dict[tuple[str, str, str, str], str] = {}
    for index, node in enumerate(nodes):
        if node.id in seen_ids:
            problems.append(
                Diagnostic(
                    f"duplicate node id {node.id!r} (also output.nodes[{seen_ids[node.id]}])",
                    f"output.nodes[{index}].id",
                )
            )
        seen_ids.setdefault(node.id, index)
        key = object_key(node.object)
        if key in seen_objects:
            _group, kind, namespace, name = key
            problems.append(
                Diagnostic(
                    f"{kind} {namespace + '/' if namespace else ''}{name} is rendered by nodes "
                    f"{seen_objects[key]!r} and {node.id!r}; an object belongs to one node",
                    f"output.nodes[{index}].object",
                )
            )
        seen_objects.setdefault(key, node.id)


def _check_dependencies(nodes: list[Node], problems: list[Diagnostic]) -> None:
    ids = {node.id for node in nodes}
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for index, node in enumerate(nodes):
        for position, dependency in enumerate(node.depends_on):
            path = f"output.nodes[{index}].dependsOn[{position}]"
            if dependency == node.id:
                problems.append(Diagnostic(f"node {node.id!r} depends on itself", path))
            elif dependency not in ids:
                problems.append(
                    Diagnostic(
                        f"node {node.id!r} depends on {dependency!r}, which is not a node "
                        f"(nodes: {', '.join(sorted(ids))})",
                        path,
                    )
                )
        sorter.add(node.id, *(d for d in node.depends_on if d in ids and d != node.id))
    try:
        sorter.prepare()
    except graphlib.CycleError as cycle:
        path = " -> ".join(reversed(cycle.args[1]))
        problems.append(Diagnostic(f"dependency cycle: {path}", "output.nodes"))


def topological_order(graph: Graph) -> list[str]:
    """Node ids, every node after its dependencies (ties in rendering order)."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for node in graph.nodes:
        sorter.add(node.id, *node.depends_on)
    return list(sorter.static_order())
