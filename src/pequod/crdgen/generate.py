"""Module → CRD: the one function the CLI (`pequod crd`) and the Transform controller call."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any

from pequod.crdgen.crd import ApiDefinition, build_crd
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
    module: ModuleSource, requested: ApiDefinition, settings: CueSettings | None = None
) -> GeneratedApi:
    schema, metadata = await asyncio.gather(
        extract_input_schema(module, settings), read_metadata(module, settings)
    )
    definition = replace(
        requested,
        kind=requested.kind or metadata.kind,
        short_names=requested.short_names or metadata.short_names,
        printer_columns=requested.printer_columns or metadata.printer_columns,
    )
    return GeneratedApi(definition, schema, metadata, build_crd(definition, schema.structural))
