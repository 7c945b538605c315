"""Renders the canonical tree in the two dialects Pequod needs.

- :func:`to_json_schema`: JSON Schema 2020-12 with closed structs closed — what CUE accepts,
  for the `jsonschema` library (offline validation, fidelity tests).
- :func:`to_structural`: a Kubernetes structural OpenAPI v3 schema for a CRD's ``spec``.
"""

from __future__ import annotations

import copy
from typing import Any

from pequod.schema.normalize import Schema

_SCALAR_TYPES = {"string", "integer", "number", "boolean"}


def to_json_schema(canonical: Schema) -> Schema:
    node = copy.deepcopy(canonical)
    _json_walk(node)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **node}


def _json_walk(node: Schema) -> None:
    if node.pop("x-kubernetes-int-or-string", False):
        node["type"] = ["integer", "string"]
    if node.pop("x-kubernetes-preserve-unknown-fields", False):
        node.pop("additionalProperties", None)
    if node.pop("nullable", False) and "type" in node:
        types = node["type"] if isinstance(node["type"], list) else [node["type"]]
        node["type"] = [*types, "null"]
        if "enum" in node:
            node["enum"] = [*node["enum"], None]
    for child in _children(node):
        _json_walk(child)


def to_structural(canonical: Schema) -> Schema:
    node = copy.deepcopy(canonical)
    _structural_walk(node)
    return node


def _structural_walk(node: Schema) -> None:
    for exclusive, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if exclusive in node:
            node[bound] = node.pop(exclusive)
            node[exclusive] = True
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]
    if node.pop("uniqueItems", False):
        items = node.get("items", {})
        if items.get("type") in _SCALAR_TYPES:
            node["x-kubernetes-list-type"] = "set"
    node.pop("title", None)
    if "type" not in node and not node.get("x-kubernetes-int-or-string"):
        node["x-kubernetes-preserve-unknown-fields"] = True
    for child in _children(node):
        _structural_walk(child)


def _children(node: Schema) -> list[Schema]:
    children: list[Schema] = list(node.get("properties", {}).values())
    for key in ("items", "additionalProperties"):
        value: Any = node.get(key)
        if isinstance(value, dict):
            children.append(value)
    return children
