"""Resolves a module reference given on the command line: a directory or ``embedded:...``."""

from __future__ import annotations

from pathlib import Path

from pequod.module.embedded import EMBEDDED_PREFIX, load_embedded
from pequod.module.source import ModuleSource, load_directory


def load_module(reference: str) -> ModuleSource:
    if reference.startswith(EMBEDDED_PREFIX):
        return load_embedded(reference)
    return load_directory(Path(reference), reference=reference)
