"""Pequod's own schema of what ``#Render.output`` must look like (modules import nothing from
Pequod; their output is checked against this)."""

from __future__ import annotations

from typing import Any

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

_PREDICATE: dict[str, Any] = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"enum": ["Exists", "ConditionMatch", "DeploymentAvailable", "CEL"]}},
    "allOf": [
        {
            "if": {"properties": {"type": {"const": "ConditionMatch"}}},
            "then": {
                "required": ["conditionType"],
                "properties": {
                    "type": True,
                    "conditionType": {"type": "string", "minLength": 1},
                    "status": {"enum": ["True", "False", "Unknown"]},
                },
                "additionalProperties": False,
            },
        },
        {
            "if": {"properties": {"type": {"const": "CEL"}}},
            "then": {
                "required": ["expression"],
                "properties": {
                    "type": True,
                    "expression": {"type": "string", "minLength": 1},
                },
                "additionalProperties": False,
            },
        },
        {
            "if": {"properties": {"type": {"enum": ["Exists", "DeploymentAvailable"]}}},
            "then": {"properties": {"type": True}, "additionalProperties": False},
        },
    ],
}

VIOLATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["path", "message"],
    "properties": {
        "path": {"type": "string"},
        "message": {"type": "string"},
        "severity": {"enum": ["Error", "Warning"]},
    },
}

_OBJECT: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata"],
    "properties": {
        "apiVersion": {"type": "string", "minLength": 1},
        "kind": {"type": "string", "pattern": "^[A-Z][A-Za-z0-9]*$"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 253},
                "namespace": {"type": "string", "pattern": DNS_LABEL, "maxLength": 63},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
    },
}

NODE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "object"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "pattern": DNS_LABEL, "maxLength": 63},
        "object": _OBJECT,
        "dependsOn": {"type": "array", "items": {"type": "string"}},
        "readyWhen": {"type": "array", "items": _PREDICATE},
        "applyPolicy": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "mode": {"enum": ["Apply", "CreateOnly"]},
                "conflictPolicy": {"enum": ["Error", "Force"]},
            },
        },
        "deletionPolicy": {"enum": ["Delete", "Orphan"]},
        "waitingFor": {"type": "array", "items": {"type": "string"}},
        "adoption": {"enum": ["TakeOwnership", "Observe"]},
    },
}
"""One node of a graph, as a module writes it and a ResourceGraph stores it (the
ResourceGraph CRD's node schema is made from this one: :func:`pequod.api.crds.structural`)."""

MODULE_NODE_SCHEMA: dict[str, Any] = {
    **NODE_SCHEMA,
    "properties": {
        k: v for k, v in NODE_SCHEMA["properties"].items() if k not in ("waitingFor", "adoption")
    },
}
"""A node as a module may write it: ``waitingFor`` and ``adoption`` are Pequod's to set (see
:mod:`pequod.render.observe` and :mod:`pequod.api.adoption`)."""

OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["nodes"],
    "properties": {
        "nodes": {"type": "array", "items": MODULE_NODE_SCHEMA},
        "violations": {"type": "array", "items": VIOLATION_SCHEMA},
    },
}
