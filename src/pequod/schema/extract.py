"""Derives the schemas of a module's ``#Input`` and optional ``#Status`` by asking ``cue`` for
their encodings."""

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
"""Fields of ``spec`` that Pequod declares itself; ``#Input`` may not."""

PEQUOD_STATUS_FIELDS = (
    "phase",
    "observedGeneration",
    "conditions",
    "resourceGraphRef",
    "platformRefResolved",
    "renderHash",
    "readyNodes",
    "totalNodes",
    "adoptedNodes",
    "revision",
    "rolledBackTo",
    "violations",
)
"""Fields of an instance's ``status`` that Pequod writes itself; ``#Status`` may not declare
them, and the module's values never overwrite them."""

_PRESERVE_UNKNOWN = "x-kubernetes-preserve-unknown-fields"


@dataclass(frozen=True)
class InputSchema:
    """The module's schemas: ``#Input`` as a structural schema (for the CRD's ``spec``) and as
    JSON Schema (closed structs), and ``#Status`` as a structural schema (for the CRD's
    ``status``), None when the module has no ``#Status``."""

    structural: Schema
    json_schema: Schema
    notes: tuple[str, ...] = ()
    status: Schema | None = None


class StatusSchemaError(SchemaError):
    """``#Status`` cannot be published as the instance's status; ``field`` names the field of
    ``#Status`` at fault, None when it is ``#Status`` itself."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class _Encoded:
    canonical: Schema
    notes: tuple[str, ...]


async def extract_input_schema(
    module: ModuleSource, settings: CueSettings | None = None
) -> InputSchema:
    """Raises :class:`CueError` when cue rejects the module, :class:`SchemaError` when
    ``#Input`` cannot be a CRD schema and :class:`StatusSchemaError` when ``#Status`` cannot
    be the status's."""
    # Both definitions at once: the four cue runs are side by side, so a module with a
    # #Status takes about as long to read as one without.
    input_result, status_result = await asyncio.gather(
        _encode(module, "#Input", "PequodInput", settings),
        _encode(module, "#Status", "PequodStatus", settings),
        return_exceptions=True,
    )
    if isinstance(input_result, BaseException):
        raise _explain_missing(input_result)
    canonical = input_result.canonical
    if canonical.get("type") != "object":
        raise SchemaError("#Input must be a struct")
    for reserved in RESERVED_FIELDS:
        if reserved in canonical.get("properties", {}):
            raise SchemaError(f"#Input may not declare {reserved!r}: Pequod reserves it")
    status: Schema | None = None
    notes = list(input_result.notes)
    if isinstance(status_result, BaseException):
        if not _is_missing(status_result, "#Status"):
            raise status_result
    else:
        status = status_schema_of(status_result.canonical)
        notes.extend(f"#Status: {note}" for note in status_result.notes)
    return InputSchema(
        structural=to_structural(canonical),
        json_schema=to_json_schema(canonical),
        notes=tuple(notes),
        status=status,
    )


async def extract_status_schema(
    module: ModuleSource, settings: CueSettings | None = None
) -> Schema | None:
    """The structural schema of the module's ``#Status`` (see :func:`status_schema_of`), None
    when the module has none. Raises :class:`CueError` and :class:`StatusSchemaError`."""
    try:
        encoded = await _encode(module, "#Status", "PequodStatus", settings)
    except CueError as error:
        if _is_missing(error, "#Status"):
            return None
        raise
    return status_schema_of(encoded.canonical)


def status_schema_of(canonical: Schema) -> Schema:
    """The structural schema of ``#Status`` as the CRD's ``status`` declares it, from its
    canonical tree.

    Nothing in it is required and nothing has a default: Pequod writes its own status fields
    before any render, and leaves out a module field whose value is still pending, and the API
    server must neither refuse such a write nor fill in a value the render has not published
    (CUE has checked and completed the values it publishes against ``#Status`` already)."""
    if canonical.get("type") != "object":
        raise StatusSchemaError("#Status must be a struct")
    if isinstance(canonical.get("additionalProperties"), dict):
        raise StatusSchemaError(
            "#Status must be a struct of named fields, not a map ([string]: ...): its fields "
            "sit next to Pequod's own in the instance's status"
        )
    for name in canonical.get("properties", {}):
        if name in PEQUOD_STATUS_FIELDS:
            raise StatusSchemaError(
                f"#Status may not declare {name!r}: Pequod writes it "
                f"(its own status fields are {', '.join(PEQUOD_STATUS_FIELDS)})",
                field=name,
            )
    structural = to_structural(canonical)
    # The top level is Pequod's status: fields outside the schema are pruned, as they are
    # without a #Status, whether or not the module left #Status open.
    structural.pop("additionalProperties", None)
    structural.pop(_PRESERVE_UNKNOWN, None)
    structural.pop("required", None)
    structural.pop("default", None)
    for child in structural.get("properties", {}).values():
        _drop_required_and_defaults(child)
    return structural


def _drop_required_and_defaults(node: Schema) -> None:
    node.pop("required", None)
    node.pop("default", None)
    children: list[Any] = [*node.get("properties", {}).values()]
    children += [node.get(key) for key in ("items", "additionalProperties")]
    for child in children:
        if isinstance(child, dict):
            _drop_required_and_defaults(child)


async def _encode(
    module: ModuleSource, definition: str, fresh_name: str, settings: CueSettings | None
) -> _Encoded:
    """The canonical tree of one definition: cue's JSON Schema encoding, with what its OpenAPI
    encoding adds (defaults, bounds of defaulted fields) laid over it."""
    jsonschema_run = run_cue(
        ["export", "--out", "jsonschema", "-e", definition, "."],
        cwd=module.directory,
        settings=settings,
    )
    # Only the definition, under a fresh name: encoding the whole package would also encode
    # #Render, which cue's OpenAPI encoder may refuse (hidden fields, interpolations, loop
    # variables).
    openapi_run = run_cue(
        ["export", "--out", "openapi+json", "-e", f"{{#{fresh_name}: {definition}}}", "."],
        cwd=module.directory,
        settings=settings,
    )
    jsonschema_result, openapi_result = await asyncio.gather(
        jsonschema_run, openapi_run, return_exceptions=True
    )
    if isinstance(jsonschema_result, BaseException):
        raise jsonschema_result
    encoded: dict[str, Any] = json.loads(jsonschema_result)
    try:
        canonical = normalize(encoded, encoded.get("$defs", {}))
    except SchemaError as error:
        if definition == "#Status":
            raise _status_error(encoded, error) from None
        raise
    notes: list[str] = []
    if isinstance(openapi_result, BaseException):
        # cue's OpenAPI encoder refuses some constructs (e.g. list.MinItems); the JSON Schema
        # encoding still carries the structure, only defaults are then left to CUE at render.
        notes.append(f"defaults not exported to the schema: {openapi_result}")
    else:
        components = json.loads(openapi_result).get("components", {}).get("schemas", {})
        if fresh_name in components:
            overlay_openapi(canonical, components[fresh_name], components)
    return _Encoded(canonical, tuple(notes))


def _status_error(encoded: Schema, error: SchemaError) -> StatusSchemaError:
    """``error`` of normalizing ``#Status``, naming the field of ``#Status`` it comes from:
    the fields are normalized one by one until one fails again."""
    definitions = encoded.get("$defs", {})
    for name, child in encoded.get("properties", {}).items():
        try:
            normalize(child, definitions)
        except SchemaError:
            return StatusSchemaError(f"#Status.{name}: {error}", field=name)
    return StatusSchemaError(f"#Status: {error}")


def _is_missing(error: BaseException, definition: str) -> bool:
    return isinstance(error, CueError) and any(
        f'reference "{definition}" not found' in d.message for d in error.diagnostics
    )


def _explain_missing(error: BaseException) -> BaseException:
    if _is_missing(error, "#Input"):
        return CueError("the module does not define #Input (see docs/module-contract.md)", [])
    return error
