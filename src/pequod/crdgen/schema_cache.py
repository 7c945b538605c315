"""What ``cue`` said about a module's ``#Input``, ``#Status`` and metadata, kept on disk by
module digest, so that an operator that restarts serves its Transforms without running ``cue``
again.

An entry is keyed by the module digest, the ``cue`` binary and the code that reads cue's
answers (a new Pequod or a new cue reads afresh). Entries are JSON, written atomically, and
carry the version of their layout; one that cannot be read, or of another version (an entry
written before ``#Status`` was read has none), is ignored and rewritten. The operator keeps
them under its module cache, whose size bound covers them: a file's modification time is its
last use (touched on every hit), and an evicted entry costs one ``cue`` run."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import structlog

from pequod.module.metadata import ModuleMetadata
from pequod.schema.extract import InputSchema

logger = structlog.get_logger(__name__)

ENTRY_VERSION = 2
"""The layout of an entry; 2 added the schema of ``#Status``."""


@functools.cache
def _reader_fingerprint() -> str:
    """A digest of the code that turns cue's output into a schema and metadata."""
    digest = hashlib.sha256()
    for package in ("pequod.schema", "pequod.module"):
        for entry in sorted(resources.files(package).iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".py"):
                digest.update(entry.name.encode() + b"\0" + entry.read_bytes())
    return digest.hexdigest()


class SchemaCache:
    def __init__(self, directory: Path, *, after_store: Callable[[], object] | None = None) -> None:
        """``after_store``: called after each new entry (the owner of ``directory`` keeps its
        size bound)."""
        self.directory = directory
        self.after_store = after_store

    def _path(self, module_digest: str, cue_binary: Path) -> Path:
        try:
            stat = cue_binary.stat()
            binary = f"{cue_binary}:{stat.st_size}:{stat.st_mtime_ns}"
        except OSError:
            binary = str(cue_binary)
        key = hashlib.sha256(
            "\0".join([module_digest, binary, _reader_fingerprint()]).encode()
        ).hexdigest()
        return self.directory / f"{key}.json"

    def load(
        self, module_digest: str, cue_binary: Path
    ) -> tuple[InputSchema, ModuleMetadata] | None:
        path = self._path(module_digest, cue_binary)
        try:
            entry: dict[str, Any] = json.loads(path.read_text())
            if entry.get("version") != ENTRY_VERSION:
                # Read afresh rather than guess what an older layout left out: without the
                # #Status schema, the CRD would lose the module's status fields.
                logger.debug("ignoring a schema cache entry of another version", path=str(path))
                return None
            schema = InputSchema(
                entry["schema"]["structural"],
                entry["schema"]["json_schema"],
                tuple(entry["schema"]["notes"]),
                entry["schema"]["status"],
            )
            metadata = ModuleMetadata(
                name=entry["metadata"]["name"],
                version=entry["metadata"]["version"],
                kind=entry["metadata"]["kind"],
                short_names=tuple(entry["metadata"]["short_names"]),
                printer_columns=tuple(entry["metadata"]["printer_columns"]),
                plural=entry["metadata"]["plural"],
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as error:
            logger.warning(
                "ignoring an unreadable schema cache entry", path=str(path), error=str(error)
            )
            return None
        with contextlib.suppress(OSError):  # the time of use the eviction orders entries by
            os.utime(path)
        return schema, metadata

    def store(
        self,
        module_digest: str,
        cue_binary: Path,
        schema: InputSchema,
        metadata: ModuleMetadata,
    ) -> None:
        entry = {
            "version": ENTRY_VERSION,
            "moduleDigest": module_digest,
            "schema": {
                "structural": schema.structural,
                "json_schema": schema.json_schema,
                "notes": list(schema.notes),
                "status": schema.status,
            },
            "metadata": {
                "name": metadata.name,
                "version": metadata.version,
                "kind": metadata.kind,
                "short_names": list(metadata.short_names),
                "printer_columns": list(metadata.printer_columns),
                "plural": metadata.plural,
            },
        }
        path = self._path(module_digest, cue_binary)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, staging = tempfile.mkstemp(prefix=".staging-", dir=self.directory)
            with os.fdopen(handle, "w") as file:
                json.dump(entry, file)
            os.replace(staging, path)
        except OSError as error:  # a read-only or full disk costs a cue run next time, no more
            logger.warning("could not cache a module schema", path=str(path), error=str(error))
            return
        if self.after_store is not None:
            self.after_store()
