"""Modules shipped inside the operator (``embedded_modules/``), addressed as
``embedded:NAME[@VERSION]``: ``embedded:webservice@1.1.0``, ``embedded:policy/defaults``."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

from pequod.module.source import ModuleError, ModuleSource, load_directory

EMBEDDED_PREFIX = "embedded:"
EMBEDDED_MODULES_ENV = "PEQUOD_EMBEDDED_MODULES"
_VERSION_DIRECTORY = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")


def embedded_root() -> Path:
    """Where embedded modules live: ``$PEQUOD_EMBEDDED_MODULES`` or the installed package data."""
    override = os.environ.get(EMBEDDED_MODULES_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "embedded_modules"


def _versions(directory: Path) -> dict[str, tuple[int, int, int]]:
    found: dict[str, tuple[int, int, int]] = {}
    for child in directory.iterdir():
        match = _VERSION_DIRECTORY.match(child.name)
        if child.is_dir() and match:
            found[child.name] = (int(match[1]), int(match[2]), int(match[3]))
    return found


def list_embedded() -> list[str]:
    """Every embedded module reference, versioned ones with each version."""
    root = embedded_root()
    references: list[str] = []
    for directory in sorted(p for p in root.rglob("*") if p.is_dir()):
        name = directory.relative_to(root).as_posix()
        if _VERSION_DIRECTORY.match(directory.name) or "__pycache__" in name:
            continue
        versions = _versions(directory)
        for version in sorted(versions, key=versions.__getitem__):
            references.append(f"{EMBEDDED_PREFIX}{name}@{version.removeprefix('v')}")
        if not versions and any(directory.glob("*.cue")):
            references.append(f"{EMBEDDED_PREFIX}{name}")
    return references


def load_embedded(reference: str) -> ModuleSource:
    """Resolves ``embedded:NAME[@VERSION]``; without a version, the highest one.

    Embedded modules ship with the operator and never change while it runs, so each reference
    is resolved (and its files hashed) once.
    """
    return _load_embedded(str(embedded_root()), reference)


@functools.cache
def _load_embedded(root_path: str, reference: str) -> ModuleSource:
    name, _, version = reference.removeprefix(EMBEDDED_PREFIX).partition("@")
    root = Path(root_path)
    directory = (root / name).resolve()
    if not name or root.resolve() not in directory.parents or not directory.is_dir():
        raise ModuleError(
            f"{reference}: no such embedded module (available: {', '.join(list_embedded())})"
        )
    versions = _versions(directory)
    if versions:
        if version:
            chosen = "v" + version.removeprefix("v")
            if chosen not in versions:
                available = ", ".join(sorted(v.removeprefix("v") for v in versions))
                raise ModuleError(f"{reference}: no version {version} (available: {available})")
        else:
            chosen = max(versions, key=versions.__getitem__)
        source = load_directory(
            directory / chosen, reference=f"{EMBEDDED_PREFIX}{name}@{chosen[1:]}"
        )
        return ModuleSource(source.directory, source.reference, source.digest, chosen[1:])
    if version:
        raise ModuleError(f"{reference}: embedded module {name} is not versioned")
    return load_directory(directory, reference=f"{EMBEDDED_PREFIX}{name}")
