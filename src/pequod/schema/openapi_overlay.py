"""Adds what cue's OpenAPI encoding knows and its JSON Schema encoding drops (defaults, and the
bounds of a field that has a default) to the canonical tree."""

from __future__ import annotations

from typing import Any

from pequod.schema.normalize import Schema

_COPIED = ("default", "description", "minLength", "maxLength", "pattern", "enum")


def overlay_openapi(canonical: Schema, openapi: Schema, components: dict[str, Schema]) -> None:
    """Walks both trees together and fills ``canonical`` (in place) from ``openapi``."""
    openapi = _resolve(openapi, components)
    for key in _COPIED:
        if key in openapi and key not in canonical:
            canonical[key] = openapi[key]
    _overlay_bounds(canonical, openapi)
    for name, child in canonical.get("properties", {}).items():
        other = openapi.get("properties", {}).get(name)
        if isinstance(other, dict):
            overlay_openapi(child, other, components)
    for key in ("items", "additionalProperties"):
        child, other = canonical.get(key), openapi.get(key)
        if isinstance(child, dict) and isinstance(other, dict):
            overlay_openapi(child, other, components)
    for name in openapi.get("required", []):
        child = canonical.get("properties", {}).get(name)
        if (
            isinstance(child, dict)
            and child.get("type") == "object"
            and "default" not in child
            and name not in canonical.get("required", [])
        ):
            # A struct CUE requires but can complete from its fields' defaults: let the API
            # server create it too, so the stored spec shows the defaults.
            child["default"] = {}
    if "required" in canonical:
        defaulted = {
            name for name, child in canonical.get("properties", {}).items() if "default" in child
        }
        canonical["required"] = [n for n in canonical["required"] if n not in defaulted]
        if not canonical["required"]:
            del canonical["required"]


def _resolve(node: Schema, components: dict[str, Schema]) -> Schema:
    seen: set[str] = set()
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen or name not in components:
            return {}
        seen.add(name)
        node = {**components[name], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _overlay_bounds(canonical: Schema, openapi: Schema) -> None:
    """OpenAPI 3.0 writes `minimum: 0, exclusiveMinimum: true`; 2020-12 `exclusiveMinimum: 0`."""
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if bound not in openapi or bound in canonical or exclusive in canonical:
            continue
        value: Any = openapi[bound]
        if openapi.get(exclusive) is True:
            canonical[exclusive] = value
        else:
            canonical[bound] = value
