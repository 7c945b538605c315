"""Reads a module's optional ``#Metadata``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pequod.cue.runner import CueError, CueSettings, run_cue
from pequod.module.source import ModuleSource


@dataclass(frozen=True)
class ModuleMetadata:
    name: str | None = None
    version: str | None = None
    kind: str | None = None
    short_names: tuple[str, ...] = ()
    printer_columns: tuple[dict[str, Any], ...] = field(default=())


async def read_metadata(
    module: ModuleSource, settings: CueSettings | None = None
) -> ModuleMetadata:
    """The module's ``#Metadata``; empty when the module does not define one."""
    try:
        output = await run_cue(
            ["export", "-e", "#Metadata", "--out", "json", "."],
            cwd=module.directory,
            settings=settings,
        )
    except CueError as error:
        if any('reference "#Metadata" not found' in d.message for d in error.diagnostics):
            return ModuleMetadata()
        raise
    data: dict[str, Any] = json.loads(output)
    return ModuleMetadata(
        name=data.get("name"),
        version=data.get("version"),
        kind=data.get("kind"),
        short_names=tuple(data.get("shortNames", ())),
        printer_columns=tuple(data.get("printerColumns", ())),
    )
