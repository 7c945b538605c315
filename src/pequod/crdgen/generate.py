"""Module → CRD: the one function the CLI (`pequod crd`) and the Transform controller call."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pequod.crdgen.crd import ApiDefinition, build_crd
from pequod.crdgen.schema_cache import SchemaCache
from pequod.cue.runner import CueSettings
from pequod.module.metadata import ModuleMetadata, read_metadata
from pequod.module.source import ModuleSource
from pequod.schema.extract import InputSchema, extract_input_schema


@dataclass(frozen=True)
class GeneratedApi:
    definition: ApiDefinition
    """The request with the module's metadata filled in where it left a field unset."""
    schema: InputSchema
    metadata: ModuleMetadata
    crd: dict[str, Any]


async def generate_api(
    module: ModuleSource,
    requested: ApiDefinition,
    settings: CueSettings | None = None,
    *,
    cache: SchemaCache | None = None,
    labels: Mapping[str, str] | None = None,
) -> GeneratedApi:
    """The CRD of ``module`` for ``requested``, carrying ``labels``. With a ``cache``, what cue
    says about a module digest is read from it when it is there (no cue run) and written to it
    when it is not."""
    if cache is None:
        schema, metadata = await _ask_cue(module, settings)
    else:
        binary = (settings or CueSettings()).resolve_binary()
        cached = cache.load(module.digest, binary)
        if cached is None:
            cached = await _ask_cue(module, settings)
            cache.store(module.digest, binary, *cached)
        schema, metadata = cached
    definition = replace(
        requested,
        kind=requested.kind or metadata.kind,
        short_names=requested.short_names or metadata.short_names,
        printer_columns=requested.printer_columns or metadata.printer_columns,
        plural_name=requested.plural_name or metadata.plural,
    )
    crd = build_crd(definition, schema.structural, labels, module_status=schema.status)
    return GeneratedApi(definition, schema, metadata, crd)


async def _ask_cue(
    module: ModuleSource, settings: CueSettings | None
) -> tuple[InputSchema, ModuleMetadata]:
    """The module's #Input and #Status as schemas, and its metadata: cue runs side by side."""
    schema, metadata = await asyncio.gather(
        extract_input_schema(module, settings), read_metadata(module, settings)
    )
    return schema, metadata
