"""Resolves a module reference of any source type (embedded, a local directory, inline,
configmap, oci, git) into a module on disk with a digest, for the operator's controllers and
the command line alike; ConfigMaps and pull Secrets are read through :class:`ModuleObjects`,
which the operator implements over its Kubernetes client."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Protocol

from pequod.delivery.cache import ModuleCache, module_cache_root
from pequod.delivery.fetcher import FetchSettings, ModuleFetcher
from pequod.delivery.oci import OciReference
from pequod.delivery.pull_secrets import decode_secret, git_credentials, registry_credentials
from pequod.delivery.reference import DIRECTORY, ModuleReference
from pequod.delivery.source_namespaces import SourceNamespaces
from pequod.module.embedded import EMBEDDED_PREFIX, load_embedded
from pequod.module.source import ModuleError, ModuleSource, load_directory

INLINE_FILE = "module.cue"
_LOCAL_TYPES = ("embedded", DIRECTORY)


class ModuleObjects(Protocol):
    """Reads the cluster objects a module source may name: each returns the object, or None
    when it does not exist."""

    async def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None: ...


class ModuleResolver:
    def __init__(
        self,
        objects: ModuleObjects | None = None,
        *,
        cache: ModuleCache | None = None,
        fetch_settings: FetchSettings | None = None,
        source_namespaces: SourceNamespaces | None = None,
    ) -> None:
        """``objects``: None off a cluster (configmap sources and pull Secrets then fail);
        ``cache``: default, one at :func:`module_cache_root`, made on first need (embedded
        and directory modules need none)."""
        self.objects = objects
        self.fetch_settings = fetch_settings or FetchSettings()
        self.source_namespaces = source_namespaces or SourceNamespaces()
        self._cache = cache
        self._fetcher: ModuleFetcher | None = None

    @property
    def cache(self) -> ModuleCache:
        if self._cache is None:
            self._cache = ModuleCache(module_cache_root(), self.fetch_settings.cache_bytes)
        return self._cache

    @property
    def fetcher(self) -> ModuleFetcher:
        if self._fetcher is None:
            self._fetcher = ModuleFetcher(self.cache.root, self.fetch_settings, cache=self.cache)
        return self._fetcher

    def load(self, reference: ModuleReference | str) -> ModuleSource:
        """A module that needs no cluster and no network: embedded, a directory (a string
        is read as the command line reads it) or inline."""
        if isinstance(reference, str):
            reference = ModuleReference.from_argument(reference)
        if reference.type == "embedded":
            return load_embedded(EMBEDDED_PREFIX + reference.ref.removeprefix(EMBEDDED_PREFIX))
        if reference.type == DIRECTORY:
            return load_directory(Path(reference.ref), reference=reference.ref)
        if reference.type == "inline":
            return self.materialize({INLINE_FILE: reference.ref}, "inline")
        raise ModuleError(f"a {reference.type} module cannot be loaded without a cluster")

    async def resolve(
        self, reference: ModuleReference, *, cached_config_map: dict[str, Any] | None = None
    ) -> ModuleSource:
        """The module a reference names. Raises :class:`ModuleError` with a reason to show,
        and :class:`ModuleSourceNotAllowed` for a ConfigMap or a pull Secret the source
        namespaces do not allow.

        ``cached_config_map`` (from an informer) saves the read of a ConfigMap source."""
        if reference.type in (*_LOCAL_TYPES, "inline"):
            return self.load(reference)
        self.source_namespaces.check(reference)
        if reference.type == "configmap":
            namespace, name = reference.configmap_name()
            config_map = cached_config_map or await self._objects().get_config_map(namespace, name)
            if config_map is None:
                raise ModuleError(f"ConfigMap {namespace}/{name} not found")
            files = {k: v for k, v in (config_map.get("data") or {}).items() if k.endswith(".cue")}
            if not files:
                raise ModuleError(f"ConfigMap {namespace}/{name} has no *.cue keys")
            return self.materialize(files, f"configmap:{namespace}/{name}")
        if reference.remote:
            secret = await self._pull_secret(reference)
            if reference.type == "oci":
                fetched = await self.fetcher.oci(
                    reference.ref,
                    path=reference.path,
                    insecure=reference.insecure,
                    credentials=registry_credentials(
                        secret, OciReference.parse(reference.ref, insecure=reference.insecure)
                    )
                    if secret
                    else None,
                )
            else:
                fetched = await self.fetcher.git(
                    reference.ref,
                    path=reference.path,
                    credentials=git_credentials(secret) if secret else None,
                )
            return fetched.module
        raise ModuleError(f"module source type {reference.type!r} is not supported")

    def materialize(self, files: dict[str, str], origin: str) -> ModuleSource:
        """Writes ``files`` to a cache entry named by their digest (once) and loads it."""
        digest = hashlib.sha256()
        for name in sorted(files):
            if "/" in name or name.startswith("."):
                raise ModuleError(f"{origin}: file name {name!r} is not allowed")
            digest.update(f"{len(name)}:{name}\0{len(files[name])}:".encode())
            digest.update(files[name].encode())
        key = f"content-{digest.hexdigest()}"

        def fill(directory: Path) -> None:
            (directory / "module").mkdir()
            for name, content in files.items():
                (directory / "module" / name).write_text(content)

        entry = self.cache.get(key) or self.cache.put(key, fill)
        return self.cache.hold(key, load_directory(entry / "module", reference=origin))

    def _objects(self) -> ModuleObjects:
        if self.objects is None:
            raise ModuleError("ConfigMaps and Secrets can be read only in a cluster")
        return self.objects

    async def _pull_secret(self, reference: ModuleReference) -> dict[str, str] | None:
        if reference.pull_secret is None:
            return None
        namespace, name = reference.pull_secret
        secret = await self._objects().get_secret(namespace, name)
        if secret is None:
            raise ModuleError(f"pull secret {namespace}/{name} not found")
        return decode_secret(secret)
