"""A module as a directory on disk with a content digest."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

_IGNORED_PARTS = {".git", "__pycache__"}


class ModuleError(Exception):
    """A module cannot be found or read."""


@dataclass(frozen=True)
class ModuleSource:
    """A module ready to evaluate: its directory, the reference it came from and its digest.

    ``digest`` (``sha256:<hex>``) covers every file of the module, so any change to the module
    changes it (and with it the render hash of every instance).
    """

    directory: Path
    reference: str
    digest: str
    version: str | None = None


def directory_digest(directory: Path) -> str:
    """``sha256:`` of the module's files: each relative path and content, in sorted order."""
    digest = hashlib.sha256()
    files = sorted(
        path
        for path in directory.rglob("*")
        if path.is_file() and not _IGNORED_PARTS.intersection(path.relative_to(directory).parts)
    )
    for path in files:
        relative = path.relative_to(directory).as_posix().encode()
        content = path.read_bytes()
        digest.update(b"%d:%s\0%d:" % (len(relative), relative, len(content)))
        digest.update(content)
    return "sha256:" + digest.hexdigest()


def load_directory(directory: Path, *, reference: str | None = None) -> ModuleSource:
    directory = directory.resolve()
    if not directory.is_dir():
        raise ModuleError(f"{directory}: not a directory")
    if not any(directory.glob("*.cue")):
        raise ModuleError(f"{directory}: no .cue files (a module is one CUE package)")
    return ModuleSource(
        directory=directory,
        reference=reference or str(directory),
        digest=directory_digest(directory),
    )
