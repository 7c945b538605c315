"""Pequod's own checks of a rendered graph."""

from __future__ import annotations

from typing import Any

import pytest

from pequod.graph.validate import GraphError, NamespacePolicy, build_graph, topological_order


def node(node_id: str, *depends_on: str, **extra: Any) -> dict[str, Any]:
    obj = extra.pop("object", None) or {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": node_id},
    }
    result: dict[str, Any] = {"id": node_id, "object": obj, **extra}
    if depends_on:
        result["dependsOn"] = list(depends_on)
    return result


POLICY = NamespacePolicy("team-a")


def messages(error: pytest.ExceptionInfo[GraphError]) -> list[str]:
    return [str(d) for d in error.value.diagnostics]


def test_valid_graph_gets_namespaces_defaults_and_order() -> None:
    graph = build_graph({"nodes": [node("b", "a"), node("a")]}, POLICY)
    assert [n.object["metadata"]["namespace"] for n in graph.nodes] == ["team-a", "team-a"]
    assert graph.node("b").apply_mode == "Apply"
    assert graph.node("b").deletion_policy == "Delete"
    assert topological_order(graph) == ["a", "b"]


def test_cycle_is_named() -> None:
    with pytest.raises(GraphError) as error:
        build_graph({"nodes": [node("a", "b"), node("b", "a")]}, POLICY)
    assert messages(error) == ["output.nodes: dependency cycle: a -> b -> a"]


def test_unknown_and_self_dependencies() -> None:
    with pytest.raises(GraphError) as error:
        build_graph({"nodes": [node("a", "a", "zz")]}, POLICY)
    assert messages(error) == [
        "output.nodes[0].dependsOn[0]: node 'a' depends on itself",
        "output.nodes[0].dependsOn[1]: node 'a' depends on 'zz', which is not a node (nodes: a)",
    ]


def test_ids_must_be_dns_labels_and_unique() -> None:
    with pytest.raises(GraphError) as error:
        build_graph({"nodes": [node("Bad_Id")]}, POLICY)
    assert "output.nodes[0].id" in messages(error)[0]
    same = node("a")
    other = node("a", object={"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}})
    with pytest.raises(GraphError) as duplicate:
        build_graph({"nodes": [same, other]}, POLICY)
    assert "duplicate node id 'a'" in messages(duplicate)[0]


def test_one_object_belongs_to_one_node() -> None:
    first = node("a", object={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    second = node("b", object={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    with pytest.raises(GraphError) as error:
        build_graph({"nodes": [first, second]}, POLICY)
    assert "ConfigMap team-a/x is rendered by nodes 'a' and 'b'" in messages(error)[0]


def test_malformed_objects_and_predicates() -> None:
    broken = {"id": "a", "object": {"kind": "ConfigMap"}, "readyWhen": [{"type": "Sometimes"}]}
    with pytest.raises(GraphError) as error:
        build_graph({"nodes": [broken]}, POLICY)
    found = messages(error)
    assert "output.nodes[0].object: 'apiVersion' is a required property" in found
    assert "output.nodes[0].object: 'metadata' is a required property" in found
    assert any(
        m.startswith("output.nodes[0].readyWhen[0].type: 'Sometimes' is not one of") for m in found
    )


def test_condition_match_needs_a_condition_type() -> None:
    with pytest.raises(GraphError) as error:
        build_graph({"nodes": [node("a", readyWhen=[{"type": "ConditionMatch"}])]}, POLICY)
    assert "'conditionType' is a required property" in messages(error)[0]


def test_namespaces_outside_the_instance_need_permission() -> None:
    elsewhere = node(
        "a",
        object={
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "b"},
        },
    )
    with pytest.raises(GraphError):
        build_graph({"nodes": [elsewhere]}, POLICY)
    assert build_graph({"nodes": [elsewhere]}, NamespacePolicy("team-a", ("b",))).nodes
    assert build_graph({"nodes": [elsewhere]}, NamespacePolicy("team-a", ("*",))).nodes


def test_cluster_scoped_objects_need_permission_and_take_no_namespace() -> None:
    namespace = node(
        "ns", object={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}
    )
    with pytest.raises(GraphError):
        build_graph({"nodes": [namespace]}, POLICY)
    graph = build_graph(
        {"nodes": [namespace]}, NamespacePolicy("team-a", allow_cluster_scoped=True)
    )
    assert "namespace" not in graph.nodes[0].object["metadata"]


def test_cel_syntax_is_checked() -> None:
    good = node("a", readyWhen=[{"type": "CEL", "expression": "object.data.ready == 'yes'"}])
    assert build_graph({"nodes": [good]}, POLICY).nodes
    bad = node("a", readyWhen=[{"type": "CEL", "expression": "object.data. =="}])
    with pytest.raises(GraphError) as error:
        build_graph({"nodes": [bad]}, POLICY)
    assert messages(error)[0].startswith("output.nodes[0].readyWhen[0].expression: invalid CEL")


def test_module_violations_are_kept() -> None:
    output = {
        "nodes": [],
        "violations": [{"path": "spec.x", "message": "m", "severity": "Warning"}],
    }
    graph = build_graph(output, POLICY, source="mod")
    assert [str(v) for v in graph.violations] == ["Warning: spec.x: m [mod]"]


def test_condition_match_status_defaults_to_true() -> None:
    predicate = {"type": "ConditionMatch", "conditionType": "Ready"}
    graph = build_graph({"nodes": [node("a", readyWhen=[predicate])]}, POLICY)
    assert graph.nodes[0].ready_when == (
        {"type": "ConditionMatch", "conditionType": "Ready", "status": "True"},
    )
