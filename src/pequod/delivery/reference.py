"""What a module reference names: a source type (embedded, inline, configmap, oci, git, or a
local directory on the command line) and what the resolver needs to find it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pequod.delivery.git import GitReference
from pequod.delivery.oci import OciReference
from pequod.delivery.source_namespaces import OPERATOR_NAMESPACE
from pequod.module.embedded import EMBEDDED_PREFIX
from pequod.module.source import ModuleError

DIRECTORY = "directory"
"""A module directory on the local disk: the command line's sources, never a Transform's."""


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

    @classmethod
    def from_argument(cls, text: str) -> ModuleReference:
        """What the command line accepts: ``embedded:NAME[@VERSION]``, else a directory."""
        if text.startswith(EMBEDDED_PREFIX):
            return cls("embedded", text)
        return cls(DIRECTORY, text)

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
