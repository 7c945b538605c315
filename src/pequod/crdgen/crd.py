"""Builds the CustomResourceDefinition of a platform API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pequod.crdgen.naming import camel_case, plural_of, singular_of
from pequod.schema.normalize import Schema

DEFAULT_GROUP = "platform.pequod.io"
DEFAULT_VERSION = "v1alpha1"
CATEGORIES = ["pequod"]


@dataclass(frozen=True)
class ApiDefinition:
    """What a Transform (or `pequod crd`) asks for; unset fields come from the module."""

    name: str
    group: str = DEFAULT_GROUP
    version: str = DEFAULT_VERSION
    kind: str | None = None
    short_names: tuple[str, ...] = ()
    printer_columns: tuple[dict[str, Any], ...] = field(default=())
    plural_name: str | None = None
    """The plural to serve (``#Metadata.plural``, or the one an existing CRD already serves);
    unset, it is derived from the kind."""

    @property
    def resolved_kind(self) -> str:
        return self.kind or camel_case(self.name)

    @property
    def plural(self) -> str:
        return self.plural_name or plural_of(self.resolved_kind)

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"


def status_condition_schema() -> Schema:
    """A metav1.Condition."""
    return {
        "type": "object",
        "required": ["type", "status", "lastTransitionTime", "reason", "message"],
        "properties": {
            "type": {"type": "string", "maxLength": 316},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
            "reason": {"type": "string", "maxLength": 1024},
            "message": {"type": "string", "maxLength": 32768},
        },
    }


def platform_ref_schema() -> Schema:
    """``spec.platformRef``: pins one instance to a module version the Transform allows."""
    return {
        "type": "object",
        "description": "Pins this instance to one module version; the Transform must allow it.",
        "required": ["type", "ref"],
        "properties": {
            "type": {"type": "string", "enum": ["embedded", "oci", "git"]},
            "ref": {
                "type": "string",
                "minLength": 1,
                "description": "embedded NAME@VERSION, an OCI digest reference or a Git SHA.",
            },
        },
    }


def status_schema(module_status: Schema | None = None) -> Schema:
    """The instance's ``status``: Pequod's own fields and, with ``module_status`` (the
    structural schema of the module's ``#Status``), the module's next to them.

    Pequod's fields win a name both declare (``#Status`` may not declare them; see
    :data:`pequod.schema.extract.PEQUOD_STATUS_FIELDS`). The status does not preserve unknown
    fields: what is written to it is pruned to what is declared here, which is why the module's
    fields are declared (and so ``kubectl explain`` shows their doc comments, and printer
    columns may name them)."""
    module_properties: dict[str, Schema] = (module_status or {}).get("properties", {})
    schema = _pequod_status_schema()
    schema["properties"] = {**module_properties, **schema["properties"]}
    if module_status is not None and "description" in module_status:
        schema["description"] = module_status["description"]
    return schema


def _pequod_status_schema() -> Schema:
    return {
        "type": "object",
        "properties": {
            "phase": {
                "type": "string",
                "description": "Pending, Rendering, Applying, Ready, DryRun or Failed.",
            },
            "observedGeneration": {"type": "integer", "format": "int64"},
            "conditions": {
                "type": "array",
                "items": status_condition_schema(),
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
            "resourceGraphRef": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
            },
            "platformRefResolved": {
                "type": "object",
                "properties": {
                    "type": {"type": "string"},
                    "ref": {"type": "string"},
                    "digest": {"type": "string"},
                },
            },
            "renderHash": {"type": "string"},
            "readyNodes": {"type": "integer"},
            "adoptedNodes": {
                "type": "integer",
                "description": "Nodes whose object existed and was adopted (pequod.io/adopt).",
            },
            "totalNodes": {"type": "integer"},
            "revision": {
                "type": "object",
                "description": "The revision in force: the ControllerRevision that keeps "
                "the graph applied (pequod history lists them).",
                "properties": {
                    "number": {"type": "integer"},
                    "name": {"type": "string"},
                    "outcome": {"type": "string"},
                },
            },
            "rolledBackTo": {
                "type": "object",
                "description": "The revision pequod.io/rollback-to put back, kept until the "
                "spec (generation) or the module (digest) changes.",
                "properties": {
                    "revision": {"type": "integer"},
                    "renderHash": {"type": "string"},
                    "generation": {"type": "integer", "format": "int64"},
                    "moduleDigest": {"type": "string"},
                    "revisionModule": {
                        "type": "object",
                        "properties": {
                            "ref": {"type": "string"},
                            "digest": {"type": "string"},
                        },
                    },
                },
            },
            "violations": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "path": {"type": "string"},
                        "message": {"type": "string"},
                        "severity": {"type": "string"},
                    },
                },
            },
        },
    }


def _printer_columns(definition: ApiDefinition) -> list[dict[str, Any]]:
    columns: list[dict[str, Any]] = [
        {
            "name": "Ready",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        },
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    ]
    for column in definition.printer_columns:
        keys = ("name", "type", "jsonPath", "description")
        entry: dict[str, Any] = {k: column[k] for k in keys if k in column}
        entry.setdefault("type", "string")
        columns.append(entry)
    columns.append({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})
    return columns


def build_crd(
    definition: ApiDefinition,
    spec_schema: Schema,
    labels: Mapping[str, str] | None = None,
    *,
    module_status: Schema | None = None,
) -> dict[str, Any]:
    """The CRD manifest: Namespaced, with status subresource, printer columns and a status
    schema; ``spec_schema`` is the structural schema of ``#Input``, ``module_status`` that of
    ``#Status`` (None: the module publishes no status fields); ``labels`` are the ownership
    marks the caller puts on it."""
    kind = definition.resolved_kind
    spec = dict(spec_schema)
    spec["properties"] = {**spec.get("properties", {}), "platformRef": platform_ref_schema()}
    spec.pop("additionalProperties", None)
    names: dict[str, Any] = {
        "kind": kind,
        "listKind": f"{kind}List",
        "plural": definition.plural,
        "singular": singular_of(kind),
        "categories": CATEGORIES,
    }
    if definition.short_names:
        names["shortNames"] = list(definition.short_names)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": definition.crd_name,
            **({"labels": dict(labels)} if labels else {}),
        },
        "spec": {
            "group": definition.group,
            "scope": "Namespaced",
            "names": names,
            "versions": [
                {
                    "name": definition.version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _printer_columns(definition),
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": f"{kind}: a platform API generated by Pequod "
                            f"from the Transform {definition.name}.",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status_schema(module_status),
                            },
                        }
                    },
                }
            ],
        },
    }
