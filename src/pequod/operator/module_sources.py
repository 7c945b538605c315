"""Resolves a Transform's module reference (embedded, inline, configmap, oci, git) into a
module on disk with a digest; OCI and Git credentials come from the Secret the reference
names."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pequod.api.names import OPERATOR_NAMESPACE
from pequod.delivery.fetcher import ModuleFetcher
from pequod.delivery.git import GitCredentials, GitReference
from pequod.delivery.oci import OciReference
from pequod.kube.client import KubeClient
from pequod.kube.resources import CONFIG_MAPS, SECRETS
from pequod.module.embedded import EMBEDDED_PREFIX, load_embedded
from pequod.module.source import ModuleError, ModuleSource, load_directory

INLINE_FILE = "module.cue"
ANY_NAMESPACE = "*"


class ModuleSourceNotAllowed(ModuleError):
    """The operator's settings refuse this source (a ConfigMap, or a pull Secret, outside the
    allowed namespaces): nothing is read, and retrying changes nothing until the reference or
    the settings do."""


@dataclass(frozen=True)
class ModuleReference:
    type: str
    ref: str
    path: str | None = None
    insecure: bool = False
    pull_secret: tuple[str, str] | None = None
    """(namespace, name) of the Secret with credentials for oci and git sources."""

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> ModuleReference:
        secret = spec.get("pullSecretRef") or {}
        return cls(
            spec["type"],
            spec["ref"],
            spec.get("path"),
            bool(spec.get("insecure", False)),
            (secret.get("namespace") or OPERATOR_NAMESPACE, secret["name"])
            if secret.get("name")
            else None,
        )

    @property
    def remote(self) -> bool:
        return self.type in ("oci", "git")

    @property
    def floating(self) -> bool:
        """A remote reference that may move (a tag or a branch), so it is resolved again
        after the resolution TTL."""
        if self.type == "oci":
            return OciReference.parse(self.ref, insecure=self.insecure).digest is None
        if self.type == "git":
            return not GitReference.parse(self.ref, path=self.path).pinned
        return False

    def configmap_name(self) -> tuple[str, str]:
        namespace, _, name = self.ref.rpartition("/")
        if not namespace or not name:
            raise ModuleError(f"configmap ref {self.ref!r} must be NAMESPACE/NAME")
        return namespace, name


@dataclass(frozen=True)
class SourceNamespaces:
    """The namespaces whose ConfigMaps may hold modules and whose Secrets may hold a module's
    pull credentials. Whoever may edit such a ConfigMap decides what the operator applies,
    anywhere its rights reach; a Secret the operator may send to a registry or Git server of a
    Transform's choosing is as good as readable by whoever writes Transforms. So by default
    only the operator's own namespace, and others only when ``pequod run
    --module-source-namespaces`` lists them (``*``: any)."""

    operator_namespace: str = OPERATOR_NAMESPACE
    others: tuple[str, ...] = ()

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.operator_namespace, *self.others)))

    def allows(self, namespace: str) -> bool:
        return ANY_NAMESPACE in self.others or namespace in self.namespaces

    def check(self, reference: ModuleReference) -> None:
        """Raises :class:`ModuleSourceNotAllowed` for a ConfigMap or a pull Secret in another
        namespace (and :class:`ModuleError` for a malformed ConfigMap reference)."""
        if reference.type == "configmap":
            namespace, name = reference.configmap_name()
            if not self.allows(namespace):
                raise ModuleSourceNotAllowed(self._refusal("ConfigMap", namespace, name))
        if reference.pull_secret is not None:
            namespace, name = reference.pull_secret
            if not self.allows(namespace):
                raise ModuleSourceNotAllowed(self._refusal("pull Secret", namespace, name))

    def _refusal(self, what: str, namespace: str, name: str) -> str:
        return (
            f"{what} {namespace}/{name}: module ConfigMaps and pull Secrets are allowed only "
            f"in namespace{'s' if len(self.namespaces) > 1 else ''} "
            f"{', '.join(self.namespaces)}; move it to "
            f"{self.operator_namespace}, or allow {namespace} with "
            f"`pequod run --module-source-namespaces={namespace}` (Helm: the value "
            "moduleSourceNamespaces)"
        )


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
    fetcher: ModuleFetcher | None = None,
    cached_config_map: dict[str, Any] | None = None,
    source_namespaces: SourceNamespaces | None = None,
) -> ModuleSource:
    """The module a reference names. Raises :class:`ModuleError` with a reason to show, and
    :class:`ModuleSourceNotAllowed` for a ConfigMap or a pull Secret ``source_namespaces``
    (default: the operator's namespace only) does not allow.

    ``cached_config_map`` (from an informer) saves the read of a ConfigMap source."""
    module_cache_root().mkdir(parents=True, exist_ok=True)
    if reference.type == "embedded":
        ref = reference.ref.removeprefix(EMBEDDED_PREFIX)
        return load_embedded(EMBEDDED_PREFIX + ref)
    if reference.type == "inline":
        return materialize({INLINE_FILE: reference.ref}, "inline")
    (source_namespaces or SourceNamespaces()).check(reference)
    if reference.type == "configmap":
        namespace, name = reference.configmap_name()
        config_map = cached_config_map or await client.get(CONFIG_MAPS, name, namespace)
        if config_map is None:
            raise ModuleError(f"ConfigMap {namespace}/{name} not found")
        files = {k: v for k, v in (config_map.get("data") or {}).items() if k.endswith(".cue")}
        if not files:
            raise ModuleError(f"ConfigMap {namespace}/{name} has no *.cue keys")
        return materialize(files, f"configmap:{namespace}/{name}")
    if reference.remote:
        if fetcher is None:
            raise ModuleError(f"{reference.type} sources need a module fetcher")
        secret = await _pull_secret(reference, client)
        if reference.type == "oci":
            fetched = await fetcher.oci(
                reference.ref,
                path=reference.path,
                insecure=reference.insecure,
                credentials=_registry_credentials(secret, reference) if secret else None,
            )
        else:
            fetched = await fetcher.git(
                reference.ref,
                path=reference.path,
                credentials=_git_credentials(secret) if secret else None,
            )
        return fetched.module
    raise ModuleError(f"module source type {reference.type!r} is not supported")


async def _pull_secret(reference: ModuleReference, client: KubeClient) -> dict[str, str] | None:
    if reference.pull_secret is None:
        return None
    namespace, name = reference.pull_secret
    secret = await client.get(SECRETS, name, namespace)
    if secret is None:
        raise ModuleError(f"pull secret {namespace}/{name} not found")
    return {
        key: base64.b64decode(value).decode(errors="replace")
        for key, value in (secret.get("data") or {}).items()
    }


def _registry_credentials(secret: dict[str, str], reference: ModuleReference) -> tuple[str, str]:
    """The registry's entry of a kubernetes.io/dockerconfigjson Secret."""
    try:
        auths = json.loads(secret[".dockerconfigjson"])["auths"]
    except (KeyError, json.JSONDecodeError) as error:
        raise ModuleError(
            "the pull secret is not a kubernetes.io/dockerconfigjson Secret "
            "(no .dockerconfigjson with auths)"
        ) from error
    host = OciReference.parse(reference.ref, insecure=reference.insecure).registry
    for server, entry in auths.items():
        if server.removeprefix("https://").removeprefix("http://").rstrip("/") == host:
            if entry.get("username"):
                return entry["username"], entry.get("password", "")
            user, _, password = base64.b64decode(entry.get("auth", "")).decode().partition(":")
            return user, password
    raise ModuleError(f"the pull secret has no credentials for {host}")


def _git_credentials(secret: dict[str, str]) -> GitCredentials:
    """Keys: username and password (or token), and optionally ca.crt, for HTTPS;
    ssh-privatekey (a kubernetes.io/ssh-auth Secret) and known_hosts for SSH."""
    return GitCredentials(
        username=secret.get("username", ""),
        password=secret.get("password") or secret.get("token", ""),
        ssh_private_key=secret.get("ssh-privatekey", ""),
        known_hosts=secret.get("known_hosts", ""),
        ca_certificate=secret.get("ca.crt", ""),
    )
