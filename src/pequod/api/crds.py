"""The CRDs of Pequod's own kinds. `manifests/crds/` holds them as YAML; a test keeps the two in
sync (PEQUOD_UPDATE_GOLDEN=1 rewrites the files)."""

from __future__ import annotations

from typing import Any

from pequod.api.names import (
    GROUP,
    RESOURCE_GRAPH_KIND,
    RESOURCE_GRAPH_PLURAL,
    TRANSFORM_KIND,
    TRANSFORM_PLURAL,
    VERSION,
)
from pequod.crdgen.crd import status_condition_schema
from pequod.graph.shape import NODE_SCHEMA

Schema = dict[str, Any]

_STRING: Schema = {"type": "string"}
_SOURCE_TYPES = ["embedded", "inline", "configmap", "oci", "git"]


def module_reference_schema(description: str) -> Schema:
    return {
        "type": "object",
        "description": description,
        "required": ["type", "ref"],
        "properties": {
            "type": {
                "type": "string",
                "enum": _SOURCE_TYPES,
                "description": "Where the module comes from.",
            },
            "ref": {
                "type": "string",
                "minLength": 1,
                "description": "embedded: NAME[@VERSION]; inline: the CUE source itself; "
                "configmap: NAMESPACE/NAME of a ConfigMap whose *.cue keys are the files "
                "(in the operator's namespace unless the operator allows others); "
                "oci: HOST/REPO:TAG or @sha256:...; git: URL?ref=...&path=...",
            },
            "path": {"type": "string", "description": "A subdirectory of the artifact."},
            "insecure": {
                "type": "boolean",
                "description": "oci: plain HTTP (a loopback or test registry); also written "
                "as HOST+insecure/REPO in ref.",
            },
            "pullSecretRef": {
                "type": "object",
                "properties": {"name": _STRING, "namespace": _STRING},
                "description": "Credentials for oci and git sources.",
            },
        },
    }


def _conditions() -> Schema:
    return {
        "type": "array",
        "items": status_condition_schema(),
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
    }


_COUNT: Schema = {"x-kubernetes-int-or-string": True, "pattern": "^[0-9]+%?$"}

_MODULE_VERSION: Schema = {
    "type": "object",
    "properties": {
        "ref": _STRING,
        "digest": _STRING,
        "cueRef": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}

_ROLLOUT_STATUS: Schema = {
    "type": "object",
    "description": "The rollout of the last module change (spec.rollout.strategy Waves).",
    "properties": {
        "phase": {
            "type": "string",
            "enum": ["Progressing", "Paused", "Failed", "RolledBack", "Complete"],
        },
        "target": _MODULE_VERSION,
        "previous": _MODULE_VERSION,
        "startedAt": _STRING,
        "finishedAt": _STRING,
        "currentWave": {"type": "integer"},
        "waves": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "number": {"type": "integer"},
                    "startedAt": _STRING,
                    "readyAt": _STRING,
                    "instances": {"type": "array", "items": _STRING},
                },
            },
        },
        "updatedInstances": {"type": "integer"},
        "readyInstances": {"type": "integer"},
        "failedCount": {"type": "integer"},
        "failedInstances": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "namespace": _STRING,
                    "name": _STRING,
                    "reason": _STRING,
                    "message": _STRING,
                },
            },
        },
        "message": _STRING,
    },
}


def transform_crd() -> dict[str, Any]:
    spec: Schema = {
        "type": "object",
        "required": ["cueRef"],
        "properties": {
            "cueRef": module_reference_schema("The platform module this API is made from."),
            "group": {"type": "string", "description": f"API group (default {GROUP})."},
            "version": {"type": "string", "description": f"API version (default {VERSION})."},
            "kind": {
                "type": "string",
                "pattern": "^[A-Z][A-Za-z0-9]*$",
                "description": "Kind (default: #Metadata.kind, else CamelCase of the name).",
            },
            "shortNames": {"type": "array", "items": _STRING},
            "policies": {
                "type": "array",
                "description": "Policy modules every instance's graph must satisfy.",
                "items": module_reference_schema("A policy module."),
            },
            "allowedNamespaces": {
                "type": "array",
                "items": _STRING,
                "description": "Namespaces besides the instance's that rendered objects may "
                'go to ("*": any). Default: the instance\'s namespace only.',
            },
            "allowClusterScoped": {
                "type": "boolean",
                "description": "Whether rendered objects may be cluster-scoped.",
            },
            "adoption": {
                "type": "object",
                "description": "Whether instances may take over objects that exist without "
                "them (the instance asks with the annotation pequod.io/adopt).",
                "properties": {
                    "allowedStrategies": {
                        "type": "array",
                        "description": "The strategies an instance may ask for: "
                        "TakeOwnership (Pequod becomes the owner of the fields it renders) "
                        "and Observe (read, never written). Default: none.",
                        "items": {"type": "string", "enum": ["TakeOwnership", "Observe"]},
                        "x-kubernetes-list-type": "set",
                    },
                },
            },
            "rollout": {
                "type": "object",
                "description": "How a new module version reaches the instances: all at once "
                "(the default), or in waves that stop at the first one not Ready.",
                "properties": {
                    "strategy": {"type": "string", "enum": ["AllAtOnce", "Waves"]},
                    "canary": {
                        "type": "object",
                        "description": "The first wave: the instances its selector picks, "
                        "else this many (or this percentage), in namespace/name order.",
                        "properties": {
                            "instances": _COUNT,
                            "selector": {
                                "type": "object",
                                "properties": {
                                    "matchLabels": {
                                        "type": "object",
                                        "additionalProperties": _STRING,
                                    }
                                },
                            },
                        },
                    },
                    "waveSize": {
                        **_COUNT,
                        "description": "Instances per wave after the canary: a number or a "
                        "percentage of the instances (default 25%).",
                    },
                    "bakeSeconds": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "How long a wave stays Ready before the next starts.",
                    },
                    "waveDeadlineSeconds": {
                        "type": "integer",
                        "minimum": 1,
                        "description": "A wave whose instances are not all Ready on the new "
                        "version within this fails the rollout (default 600).",
                    },
                    "onFailure": {
                        "type": "string",
                        "enum": ["Pause", "Rollback"],
                        "description": "Pause (default): the instances not moved stay on the "
                        "previous version. Rollback: the moved ones go back to it too.",
                    },
                    "paused": {
                        "type": "boolean",
                        "description": "No new wave starts while true (pequod rollout pause).",
                    },
                },
            },
            "instancePlatformRefs": {
                "type": "array",
                "description": "Module versions an instance may pin with spec.platformRef.",
                "items": {
                    "type": "object",
                    "required": ["type", "ref"],
                    "properties": {
                        "type": {"type": "string", "enum": ["embedded", "oci", "git"]},
                        "ref": _STRING,
                        "path": _STRING,
                        "insecure": {"type": "boolean"},
                        "pullSecretRef": {
                            "type": "object",
                            "properties": {"name": _STRING, "namespace": _STRING},
                        },
                    },
                },
            },
        },
    }
    status: Schema = {
        "type": "object",
        "properties": {
            "phase": {
                "type": "string",
                "enum": ["Pending", "Generating", "Ready", "Failed", "Deleting"],
            },
            "observedGeneration": {"type": "integer", "format": "int64"},
            "conditions": _conditions(),
            "generatedCRD": {
                "type": "object",
                "properties": {"apiVersion": _STRING, "kind": _STRING, "name": _STRING},
            },
            "resolvedCueRef": {
                "type": "object",
                "properties": {
                    "ref": {
                        "type": "string",
                        "description": "What cueRef resolved to: oci://HOST/REPO@sha256:… "
                        "(a tag's digest) or URL@COMMIT (a branch's or tag's commit).",
                    },
                    "digest": {
                        "type": "string",
                        "description": "sha256 of the module's files (part of every render hash).",
                    },
                    "fetchedAt": _STRING,
                    "version": _STRING,
                },
            },
            "instances": {"type": "integer", "description": "Instances of the generated kind."},
            "servedCueRef": {
                "type": "object",
                "description": "The spec.cueRef being served (what an undo puts back).",
                "x-kubernetes-preserve-unknown-fields": True,
            },
            "moduleVersions": {
                "type": "array",
                "description": "The module versions the instances are on, newest first.",
                "items": {
                    "type": "object",
                    "properties": {
                        "ref": _STRING,
                        "digest": _STRING,
                        "firstServedAt": _STRING,
                        "instances": {"type": "integer"},
                    },
                },
            },
            "rollout": _ROLLOUT_STATUS,
        },
    }
    return _crd(
        kind=TRANSFORM_KIND,
        plural=TRANSFORM_PLURAL,
        scope="Cluster",
        short_names=["tf"],
        spec=spec,
        status=status,
        columns=[
            {"name": "Kind", "type": "string", "jsonPath": ".status.generatedCRD.kind"},
            {
                "name": "Ready",
                "type": "string",
                "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
            },
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Instances", "type": "integer", "jsonPath": ".status.instances"},
            {"name": "Module", "type": "string", "jsonPath": ".status.resolvedCueRef.version"},
            {"name": "Rollout", "type": "string", "jsonPath": ".status.rollout.phase"},
            {"name": "Updated", "type": "integer", "jsonPath": ".status.rollout.updatedInstances"},
        ],
    )


def resource_graph_crd() -> dict[str, Any]:
    preserve: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    spec: Schema = {
        "type": "object",
        "required": ["sourceRef", "nodes"],
        "properties": {
            "sourceRef": {
                "type": "object",
                "required": ["apiVersion", "kind", "name"],
                "properties": {
                    "apiVersion": _STRING,
                    "kind": _STRING,
                    "name": _STRING,
                    "uid": _STRING,
                },
            },
            "metadata": {
                "type": "object",
                "properties": {
                    "name": _STRING,
                    "version": _STRING,
                    "platformRef": _STRING,
                    "renderHash": _STRING,
                    "renderedAt": _STRING,
                    "transform": _STRING,
                    "allowedNamespaces": {"type": "array", "items": _STRING},
                    "allowClusterScoped": {"type": "boolean"},
                    "inputHash": _STRING,
                },
            },
            "nodes": {"type": "array", "items": structural(NODE_SCHEMA)},
            "observe": {
                "type": "object",
                "description": "What the render read of live state (the module's #Observe): "
                "paths of its own nodes' objects, and the objects it references.",
                "properties": {
                    "nodes": {
                        "type": "object",
                        "additionalProperties": {"type": "array", "items": _STRING},
                    },
                    "references": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["name", "apiVersion", "kind", "objectName", "namespace"],
                            "properties": {
                                "name": _STRING,
                                "apiVersion": _STRING,
                                "kind": _STRING,
                                "objectName": _STRING,
                                "namespace": _STRING,
                                "paths": {"type": "array", "items": _STRING},
                            },
                        },
                    },
                },
            },
            "instanceStatus": {
                **preserve,
                "description": "The module's status fields (#Render.status), written into "
                "the instance's status.",
            },
            "violations": {"type": "array", "items": preserve},
            "dryRun": {
                "type": "boolean",
                "description": "Validate every object with the API server (dryRun=All) and "
                "report what would change; nothing is applied or pruned.",
            },
        },
    }
    status: Schema = {
        "type": "object",
        "properties": {
            "phase": {
                "type": "string",
                "enum": ["Pending", "Executing", "Ready", "Failed", "Deleting", "DryRun"],
            },
            "observedGeneration": {"type": "integer", "format": "int64"},
            "conditions": _conditions(),
            "readyNodes": {"type": "integer"},
            "totalNodes": {"type": "integer"},
            "nodes": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["id"],
                    "properties": {
                        "id": _STRING,
                        "phase": _STRING,
                        "lastError": _STRING,
                        "readyDetails": _STRING,
                        "appliedAt": _STRING,
                        "adoptedAt": {
                            "type": "string",
                            "description": "When Pequod took the existing object over.",
                        },
                        "adoptedFrom": {
                            "type": "array",
                            "description": "The field managers the object had before.",
                            "items": _STRING,
                        },
                    },
                },
            },
            "observed": {
                "type": "object",
                "description": "Per node id: the paths of its live object that spec.observe "
                "names, as found.",
                "additionalProperties": preserve,
            },
            "inventory": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "apiVersion": _STRING,
                        "kind": _STRING,
                        "namespace": _STRING,
                        "name": _STRING,
                        "uid": _STRING,
                        "nodeId": _STRING,
                        "deletionPolicy": _STRING,
                    },
                },
            },
        },
    }
    return _crd(
        kind=RESOURCE_GRAPH_KIND,
        plural=RESOURCE_GRAPH_PLURAL,
        scope="Namespaced",
        short_names=["rg"],
        spec=spec,
        status=status,
        columns=[
            {"name": "Source", "type": "string", "jsonPath": ".spec.sourceRef.kind"},
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Ready", "type": "integer", "jsonPath": ".status.readyNodes"},
            {"name": "Total", "type": "integer", "jsonPath": ".status.totalNodes"},
        ],
    )


_JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number"}


def structural(schema: Schema) -> Schema:
    """A JSON schema (Pequod's own, :mod:`pequod.graph.shape`) as a CRD can take it: a
    structural schema. A CRD has no ``allOf``/``if``/``then``, so the properties of each
    ``then`` become plain properties (all variants' fields, each with its own schema); an
    ``enum`` gets its ``type``; an object that JSON Schema leaves open (no
    ``additionalProperties: false``) keeps its unknown fields
    (``x-kubernetes-preserve-unknown-fields``), one that is closed lets the API server drop
    them (a CRD cannot refuse them)."""
    result: Schema = {}
    properties: dict[str, Schema] = {}
    for key, value in schema.items():
        if key == "properties":
            properties.update({name: structural(sub) for name, sub in value.items()})
        elif key == "items":
            result["items"] = structural(value)
        elif key == "additionalProperties":
            if isinstance(value, dict):
                result["additionalProperties"] = structural(value)
        elif key == "allOf":
            for variant in value:
                for name, sub in (variant.get("then") or {}).get("properties", {}).items():
                    if isinstance(sub, dict) and name not in properties:
                        properties[name] = structural(sub)
        elif key not in ("if", "then", "else", "const"):
            result[key] = value
    if "enum" in schema and "type" not in schema:
        (kind,) = {_JSON_TYPES[type(v)] for v in schema["enum"]}
        result = {"type": kind, **result}
    if properties:
        result["properties"] = properties
    if result.get("type") == "object" and properties and schema.get("additionalProperties") is None:
        result["x-kubernetes-preserve-unknown-fields"] = True
    return result


def _crd(
    *,
    kind: str,
    plural: str,
    scope: str,
    short_names: list[str],
    spec: Schema,
    status: Schema,
    columns: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{plural}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "pequod", "app.kubernetes.io/part-of": "pequod"},
        },
        "spec": {
            "group": GROUP,
            "scope": scope,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": short_names,
                "categories": ["pequod"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        *columns,
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": _STRING,
                                "kind": _STRING,
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def all_crds() -> list[dict[str, Any]]:
    return [transform_crd(), resource_graph_crd()]
