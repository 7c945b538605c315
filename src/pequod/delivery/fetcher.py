"""Fetches OCI and Git modules for the controllers: tags and branches resolved with a TTL,
artifacts downloaded once into the content-addressed cache, concurrent requests for one
reference served by one fetch, transient failures retried with backoff within a time limit."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pequod.backoff import Backoff
from pequod.delivery.cache import DEFAULT_MAX_BYTES, ModuleCache
from pequod.delivery.git import GitClient, GitCredentials, GitReference
from pequod.delivery.oci import FetchError, OciReference
from pequod.metrics import MODULE_FETCHES
from pequod.module.source import ModuleSource, load_directory

if TYPE_CHECKING:
    from pequod.delivery.oci_client import OciClient

T = TypeVar("T")
FETCH_BACKOFF = Backoff(base=0.5, cap=30.0, jitter=0.2)
"""Between attempts of one fetch (FetchSettings.attempts in all)."""


@dataclass(frozen=True)
class FetchSettings:
    resolve_ttl: float = 60.0
    """Seconds a tag or branch resolution is trusted before asking the server again."""
    timeout: float = 30.0
    """Seconds one request (or git command) may take."""
    attempts: int = 3
    cache_bytes: int = DEFAULT_MAX_BYTES


@dataclass(frozen=True)
class FetchedModule:
    module: ModuleSource
    resolved: str
    """What the reference resolved to: ``oci://HOST/REPO@sha256:…`` or ``URL@<commit>``."""
    digest: str
    """The manifest digest or the commit: what the artifact is cached under."""


class ModuleFetcher:
    def __init__(
        self,
        cache_root: Path,
        settings: FetchSettings | None = None,
        *,
        cache: ModuleCache | None = None,
    ) -> None:
        """``cache``: the one shared with the other sources (default: a cache of its own at
        ``cache_root``, bounded by ``settings.cache_bytes``)."""
        self.settings = settings or FetchSettings()
        self.cache = cache or ModuleCache(cache_root, self.settings.cache_bytes)
        self._resolved: dict[str, tuple[str, float]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # Modules loaded from the cache, by (artifact key, path, resolved reference): a pinned
        # instance's reconcile must not hash the module's files again every time. One commit
        # (or digest) can come from two repositories: each module names its own.
        self._loaded: dict[tuple[str, str, str], ModuleSource] = {}

    # -- OCI -------------------------------------------------------------------------------

    async def oci(
        self,
        ref: str,
        *,
        path: str | None = None,
        insecure: bool = False,
        credentials: tuple[str, str] | None = None,
    ) -> FetchedModule:
        reference = OciReference.parse(ref, insecure=insecure)

        def client() -> OciClient:
            # Loaded on the first OCI module: oras and requests stay out of other operators.
            from pequod.delivery.oci_client import OciClient

            return OciClient(reference, credentials=credentials, timeout=self.settings.timeout)

        if reference.digest and not reference.tag:
            digest = reference.digest
        else:
            # Per credentials, as for Git.
            digest = await self._resolve(
                f"oci:{reference}#{_fingerprint(credentials)}", "oci", lambda: client().resolve()
            )
        key = "oci-" + digest.replace(":", "-")
        resolved = f"oci://{reference.registry}/{reference.repository}@{digest}"
        module = await self._module(
            key, path, resolved, "oci", lambda target: client().fetch(digest, target)
        )
        return FetchedModule(module, resolved, digest)

    # -- Git -------------------------------------------------------------------------------

    async def git(
        self, ref: str, *, path: str | None = None, credentials: GitCredentials | None = None
    ) -> FetchedModule:
        reference = GitReference.parse(ref, path=path)

        def client() -> GitClient:
            return GitClient(credentials, timeout=self.settings.timeout)

        if reference.pinned:
            commit = reference.ref
        else:
            # Per credentials: a Transform with wrong ones (or none) must not be told the
            # commit another one's credentials resolved.
            commit = await self._resolve(
                f"git:{reference.url}#{reference.ref}#{_fingerprint(_git_secrets(credentials))}",
                "git",
                lambda: client().resolve(reference),
            )
        resolved = f"{reference.url}@{commit}"
        module = await self._module(
            f"git-{commit}",
            reference.path,
            resolved,
            "git",
            lambda target: client().fetch(reference, commit, target),
        )
        return FetchedModule(module, resolved, commit)

    # -- shared ----------------------------------------------------------------------------

    def forget_resolutions(self) -> None:
        """Drops every tag and branch resolution (the next fetch asks the servers)."""
        self._resolved.clear()

    async def _resolve(self, key: str, kind: str, resolve: Callable[[], str]) -> str:
        async with self._lock(f"resolve:{key}"):
            known = self._resolved.get(key)
            if known is not None and known[1] > time.monotonic():
                return known[0]
            value = await self._with_retries(kind, lambda: asyncio.to_thread(resolve))
            self._resolved[key] = (value, time.monotonic() + self.settings.resolve_ttl)
            return value

    async def _module(
        self,
        key: str,
        path: str | None,
        resolved: str,
        kind: str,
        fill: Callable[[Path], object],
    ) -> ModuleSource:
        loaded = self._loaded.get((key, path or "", resolved))
        if loaded is None or not loaded.directory.is_dir():
            directory = await self._download(key, kind, fill)
            loaded = _load(directory / "artifact", path, resolved)
            self._loaded[(key, path or "", resolved)] = loaded
        # A copy for the caller, held by the cache while it lives (this memo's own must not
        # keep the entry from eviction forever).
        return self.cache.hold(key, dataclasses.replace(loaded))

    async def _download(self, key: str, kind: str, fill: Callable[[Path], object]) -> Path:
        async with self._lock(f"download:{key}"):
            cached = self.cache.get(key)
            if cached is not None:
                return cached

            async def attempt() -> Path:
                return await asyncio.to_thread(self.cache.put, key, fill)

            return await self._with_retries(kind, attempt)

    async def _with_retries(self, kind: str, attempt: Callable[[], Awaitable[T]]) -> T:
        for number in range(1, self.settings.attempts + 1):
            try:
                async with asyncio.timeout(self.settings.timeout * 2):
                    result = await attempt()
            except (FetchError, TimeoutError) as error:
                transient = isinstance(error, TimeoutError) or error.transient
                if not transient or number == self.settings.attempts:
                    MODULE_FETCHES.labels(kind, "error").inc()
                    if isinstance(error, TimeoutError):
                        raise FetchError(
                            f"no answer in {self.settings.timeout * 2:.0f} s", transient=True
                        ) from error
                    raise
                await asyncio.sleep(FETCH_BACKOFF.jittered(number - 1))
            else:
                MODULE_FETCHES.labels(kind, "success").inc()
                return result
        raise AssertionError("unreachable")

    def _lock(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock


def _load(artifact: Path, path: str | None, resolved: str) -> ModuleSource:
    directory = artifact / path if path else artifact
    if not directory.resolve().is_relative_to(artifact.resolve()):
        raise FetchError(f"path {path!r} leaves the artifact")
    if not directory.is_dir():
        raise FetchError(f"{resolved}: no directory {path!r} in the artifact")
    return load_directory(directory, reference=resolved + (f"#{path}" if path else ""))


_FINGERPRINT_KEY = os.urandom(32)


def _fingerprint(credentials: tuple[str, ...] | None) -> str:
    """Tells credentials apart in memory; keyed, so it says nothing about the secret."""
    if credentials is None:
        return "none"
    mac = hmac.new(_FINGERPRINT_KEY, digestmod=hashlib.sha256)
    for value in credentials:
        mac.update(f"{len(value)}:{value}".encode())
    return mac.hexdigest()[:32]


def _git_secrets(credentials: GitCredentials | None) -> tuple[str, ...] | None:
    if credentials is None:
        return None
    return (
        credentials.username,
        credentials.password,
        credentials.ssh_private_key,
        credentials.known_hosts,
        credentials.ca_certificate,
    )
