"""The ResourceGraph CRD's node schema is Pequod's node schema (graph/shape.py) made structural:
written once, taken by the API server, and a graph stored by an earlier version still fits it
and reads back unchanged."""

from __future__ import annotations

from typing import Any

import jsonschema

from pequod.api.crds import resource_graph_crd, structural
from pequod.api.resource_graph import ResourceGraph
from pequod.graph.shape import NODE_SCHEMA, OUTPUT_SCHEMA

STORED_GRAPH: dict[str, Any] = {
    "apiVersion": "platform.pequod.io/v1alpha1",
    "kind": "ResourceGraph",
    "metadata": {"name": "shop", "namespace": "team", "uid": "graph-uid", "generation": 3},
    "spec": {
        "sourceRef": {
            "apiVersion": "apps.example.com/v1",
            "kind": "Shop",
            "name": "shop",
            "uid": "u",
        },
        "metadata": {
            "name": "webservice",
            "version": "1.2.0",
            "platformRef": "embedded:webservice@1.2.0",
            "renderHash": "abc",
            "renderedAt": "2026-01-01T00:00:00Z",
            "transform": "webservice",
            "allowedNamespaces": [],
            "allowClusterScoped": False,
        },
        "nodes": [
            {
                "id": "config",
                "object": {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "c"},
                    "data": {"k": "v"},
                },
                "applyPolicy": {"mode": "CreateOnly", "conflictPolicy": "Error"},
                "deletionPolicy": "Orphan",
            },
            {
                "id": "app",
                "object": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "shop", "labels": {"app": "shop"}},
                    "spec": {"replicas": 2},
                },
                "dependsOn": ["config"],
                "readyWhen": [
                    {"type": "ConditionMatch", "conditionType": "Available", "status": "True"},
                    {"type": "CEL", "expression": "object.status.readyReplicas >= 2"},
                    {"type": "Exists"},
                ],
                "applyPolicy": {"mode": "Apply", "conflictPolicy": "Force"},
                "deletionPolicy": "Delete",
            },
        ],
        "violations": [],
        "dryRun": False,
    },
    "status": {"observedGeneration": 3, "inventory": [], "nodes": []},
}


def _walk(schema: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(schema, dict):
        return []
    found = [(path, schema)]
    for name, sub in (schema.get("properties") or {}).items():
        found += _walk(sub, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        found += _walk(schema.get(key), f"{path}[{key}]")
    return found


def _crd_node_schema() -> dict[str, Any]:
    version = resource_graph_crd()["spec"]["versions"][0]
    nodes = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["nodes"]
    items: dict[str, Any] = nodes["items"]
    return items


def test_the_crd_node_schema_is_made_from_the_node_schema() -> None:
    module_node = OUTPUT_SCHEMA["properties"]["nodes"]["items"]
    # A module writes every field of a stored node but waitingFor and adoption: Pequod's.
    assert module_node["properties"] == {
        k: v for k, v in NODE_SCHEMA["properties"].items() if k not in ("waitingFor", "adoption")
    }
    assert {k: v for k, v in module_node.items() if k != "properties"} == {
        k: v for k, v in NODE_SCHEMA.items() if k != "properties"
    }
    assert _crd_node_schema() == structural(NODE_SCHEMA)


def test_the_crd_node_schema_is_structural() -> None:
    for path, schema in _walk(_crd_node_schema()):
        assert "type" in schema, path
        assert not {"allOf", "anyOf", "oneOf", "if", "then", "const"} & schema.keys(), path
        assert schema.get("additionalProperties") is not False, path
        assert not ("properties" in schema and "additionalProperties" in schema), path
    crd = _crd_node_schema()["properties"]
    assert crd["object"]["x-kubernetes-preserve-unknown-fields"] is True
    assert crd["readyWhen"]["items"]["x-kubernetes-preserve-unknown-fields"] is True
    assert set(crd["readyWhen"]["items"]["properties"]) == {
        "type",
        "conditionType",
        "status",
        "expression",
    }


def test_a_stored_graph_fits_the_crd_and_reads_back_unchanged() -> None:
    validator = jsonschema.Draft202012Validator(_crd_node_schema())
    for node in STORED_GRAPH["spec"]["nodes"]:
        validator.validate(node)
    graph = ResourceGraph.parse(STORED_GRAPH)
    assert graph.spec.to_dict() == STORED_GRAPH["spec"]
