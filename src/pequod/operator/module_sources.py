"""Resolves a Transform's module reference (embedded, inline, configmap) into a module on disk
with a digest. OCI and Git arrive behind the same function."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pequod.kube.client import KubeClient
from pequod.kube.resources import CONFIG_MAPS
from pequod.module.embedded import EMBEDDED_PREFIX, load_embedded
from pequod.module.source import ModuleError, ModuleSource, load_directory

INLINE_FILE = "module.cue"


@dataclass(frozen=True)
class ModuleReference:
    type: str
    ref: str
    path: str | None = None

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> ModuleReference:
        return cls(spec["type"], spec["ref"], spec.get("path"))

    def configmap_name(self) -> tuple[str, str]:
        namespace, _, name = self.ref.rpartition("/")
        if not namespace or not name:
            raise ModuleError(f"configmap ref {self.ref!r} must be NAMESPACE/NAME")
        return namespace, name


def module_cache_root() -> Path:
    configured = os.environ.get("PEQUOD_MODULE_CACHE")
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / "pequod-modules"


def materialize(files: dict[str, str], origin: str) -> ModuleSource:
    """Writes ``files`` to a directory named by their digest (once) and loads it."""
    digest = hashlib.sha256()
    for name in sorted(files):
        if "/" in name or name.startswith("."):
            raise ModuleError(f"{origin}: file name {name!r} is not allowed")
        digest.update(f"{len(name)}:{name}\0{len(files[name])}:".encode())
        digest.update(files[name].encode())
    directory = module_cache_root() / "content" / digest.hexdigest()
    if not directory.is_dir():
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=module_cache_root()))
        for name, content in files.items():
            (staging / name).write_text(content)
        directory.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):  # another resolver wrote the same content first
            staging.rename(directory)
    return load_directory(directory, reference=origin)


async def resolve_module(
    reference: ModuleReference,
    client: KubeClient,
    *,
    cached_config_map: dict[str, Any] | None = None,
) -> ModuleSource:
    """The module a reference names. Raises :class:`ModuleError` with a reason to show.

    ``cached_config_map`` (from an informer) saves the read of a ConfigMap source."""
    module_cache_root().mkdir(parents=True, exist_ok=True)
    if reference.type == "embedded":
        ref = reference.ref.removeprefix(EMBEDDED_PREFIX)
        return load_embedded(EMBEDDED_PREFIX + ref)
    if reference.type == "inline":
        return materialize({INLINE_FILE: reference.ref}, "inline")
    if reference.type == "configmap":
        namespace, name = reference.configmap_name()
        config_map = cached_config_map or await client.get(CONFIG_MAPS, name, namespace)
        if config_map is None:
            raise ModuleError(f"ConfigMap {namespace}/{name} not found")
        files = {k: v for k, v in (config_map.get("data") or {}).items() if k.endswith(".cue")}
        if not files:
            raise ModuleError(f"ConfigMap {namespace}/{name} has no *.cue keys")
        return materialize(files, f"configmap:{namespace}/{name}")
    raise ModuleError(f"module source type {reference.type!r} is not supported yet")
