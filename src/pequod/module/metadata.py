"""Reads a module's optional ``#Metadata``, and checks the fields that become Kubernetes names."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pequod.cue.diagnostics import Diagnostic, SourcePosition
from pequod.cue.runner import CueError, CueSettings, run_cue
from pequod.module.source import ModuleSource

PLURAL_PATTERN = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
"""A CRD's plural, as the API server requires it: an RFC 1035 label (it is also the first
label of the CRD's name, ``PLURAL.GROUP``)."""
PLURAL_MAX_LENGTH = 63


class MetadataError(CueError):
    """A ``#Metadata`` field Kubernetes would refuse; its diagnostic says where it is written."""


@dataclass(frozen=True)
class ModuleMetadata:
    name: str | None = None
    version: str | None = None
    kind: str | None = None
    short_names: tuple[str, ...] = ()
    printer_columns: tuple[dict[str, Any], ...] = field(default=())
    plural: str | None = None
    """The served plural, when the module names it rather than letting Pequod derive it."""


async def read_metadata(
    module: ModuleSource, settings: CueSettings | None = None
) -> ModuleMetadata:
    """The module's ``#Metadata``; empty when the module does not define one. Raises
    :class:`MetadataError` for a ``plural`` the API server would refuse."""
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
    plural = data.get("plural")
    if plural is not None:
        problem = plural_problem(plural)
        if problem is not None:
            raise MetadataError(
                "#Metadata.plural is not a valid CRD plural",
                [
                    Diagnostic(
                        problem,
                        "#Metadata.plural",
                        await _positions_of("#Metadata.plural", module, settings),
                    )
                ],
            )
    return ModuleMetadata(
        name=data.get("name"),
        version=data.get("version"),
        kind=data.get("kind"),
        short_names=tuple(data.get("shortNames", ())),
        printer_columns=tuple(data.get("printerColumns", ())),
        plural=plural,
    )


def plural_problem(plural: object) -> str | None:
    """Why ``plural`` cannot be a CRD's plural, or None when it can."""
    if not isinstance(plural, str):
        return f"must be a string, not {json.dumps(plural)}"
    if len(plural) > PLURAL_MAX_LENGTH:
        return f"{plural!r} is longer than {PLURAL_MAX_LENGTH} characters"
    if not PLURAL_PATTERN.match(plural):
        return (
            f"{plural!r} is not a lower-case DNS label (a-z, 0-9 and '-', starting with a "
            "letter and ending with a letter or a digit), as the API server requires of a "
            "CRD's plural"
        )
    return None


async def _positions_of(
    expression: str, module: ModuleSource, settings: CueSettings | None
) -> tuple[SourcePosition, ...]:
    """Where in the module's files ``expression`` is defined: cue names the positions of both
    sides of a conflict, so the value is unified with one it cannot be (a NUL string). Only
    run for a value already found wrong."""
    try:
        await run_cue(
            ["export", "-e", f'{expression} & "\\u0000"', "--out", "json", "."],
            cwd=module.directory,
            settings=settings,
        )
    except CueError as error:
        return tuple(
            position
            for diagnostic in error.diagnostics
            for position in diagnostic.positions
            if not position.file.startswith("--")  # the expression given on the command line
        )
    return ()
