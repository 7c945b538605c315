"""Derives the schema of a module's ``#Input`` by asking ``cue`` for its encodings."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from pequod.cue.runner import CueError, CueSettings, run_cue
from pequod.module.source import ModuleSource
from pequod.schema.kubernetes_schema import to_json_schema, to_structural
from pequod.schema.normalize import Schema, SchemaError, normalize
from pequod.schema.openapi_overlay import overlay_openapi

RESERVED_FIELDS = ("platformRef",)


@dataclass(frozen=True)
class InputSchema:
    """``#Input`` as a structural schema (for the CRD) and as JSON Schema (closed structs)."""

    structural: Schema
    json_schema: Schema
    notes: tuple[str, ...] = ()


async def extract_input_schema(
    module: ModuleSource, settings: CueSettings | None = None
) -> InputSchema:
    """Raises :class:`CueError` when cue rejects the module, :class:`SchemaError` when
    ``#Input`` cannot be a CRD schema."""
    jsonschema_run = run_cue(
        ["export", "--out", "jsonschema", "-e", "#Input", "."],
        cwd=module.directory,
        settings=settings,
    )
    # Only #Input, under a fresh name: encoding the whole package would also encode #Render,
    # which cue's OpenAPI encoder may refuse (hidden fields, interpolations, loop variables).
    openapi_run = run_cue(
        ["export", "--out", "openapi+json", "-e", "{#PequodInput: #Input}", "."],
        cwd=module.directory,
        settings=settings,
    )
    jsonschema_result, openapi_result = await asyncio.gather(
        jsonschema_run, openapi_run, return_exceptions=True
    )
    if isinstance(jsonschema_result, BaseException):
        raise _explain_missing(jsonschema_result)
    encoded: dict[str, Any] = json.loads(jsonschema_result)
    canonical = normalize(encoded, encoded.get("$defs", {}))
    notes: list[str] = []
    if isinstance(openapi_result, BaseException):
        # cue's OpenAPI encoder refuses some constructs (e.g. list.MinItems); the JSON Schema
        # encoding still carries the structure, only defaults are then left to CUE at render.
        notes.append(f"defaults not exported to the schema: {openapi_result}")
    else:
        components = json.loads(openapi_result).get("components", {}).get("schemas", {})
        if "PequodInput" in components:
            overlay_openapi(canonical, components["PequodInput"], components)
    if canonical.get("type") != "object":
        raise SchemaError("#Input must be a struct")
    for reserved in RESERVED_FIELDS:
        if reserved in canonical.get("properties", {}):
            raise SchemaError(f"#Input may not declare {reserved!r}: Pequod reserves it")
    return InputSchema(
        structural=to_structural(canonical),
        json_schema=to_json_schema(canonical),
        notes=tuple(notes),
    )


def _explain_missing(error: BaseException) -> BaseException:
    if isinstance(error, CueError) and any(
        'reference "#Input" not found' in d.message for d in error.diagnostics
    ):
        return CueError("the module does not define #Input (see docs/module-contract.md)", [])
    return error
