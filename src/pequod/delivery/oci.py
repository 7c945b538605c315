"""Modules in OCI registries: references and the artifact formats (the client that talks to
registries, through oras, is in :mod:`pequod.delivery.oci_client`, loaded only by the
operators and commands that pull or push).

Two artifact formats are read:

- Pequod's own, written by ``pequod push``: an OCI image manifest with artifactType
  ``application/vnd.pequod.module.v1``, a JSON config
  (``application/vnd.pequod.module.config.v1+json``: name, version, content digest) and one
  layer, a reproducible tar.gz of the module's files
  (``application/vnd.pequod.module.content.v1.tar+gzip``).
- CUE's module artifacts, written by ``cue mod publish``: config
  ``application/vnd.cue.module.v1+json`` and a zip layer of the module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pequod.module.source import ModuleError

ARTIFACT_TYPE = "application/vnd.pequod.module.v1"
CONFIG_MEDIA_TYPE = "application/vnd.pequod.module.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.pequod.module.content.v1.tar+gzip"
CUE_CONFIG_MEDIA_TYPE = "application/vnd.cue.module.v1+json"
CUE_LAYER_MEDIA_TYPE = "application/zip"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
MANIFEST_ACCEPT = ", ".join(
    [MANIFEST_MEDIA_TYPE, "application/vnd.docker.distribution.manifest.v2+json"]
)
DIGEST_PATTERN = re.compile(r"^sha256:[a-f0-9]{64}$")


class FetchError(ModuleError):
    """The module could not be fetched; ``transient`` says whether retrying may help."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class OciReference:
    registry: str
    repository: str
    tag: str | None
    digest: str | None
    insecure: bool = False

    @classmethod
    def parse(cls, ref: str, *, insecure: bool = False) -> OciReference:
        """``host[:port]/repo[:tag][@sha256:...]``, optionally with ``oci://`` in front and
        ``+insecure`` (plain HTTP, for loopback registries) after the host."""
        text = ref.removeprefix("oci://")
        host, _, rest = text.partition("/")
        if host.endswith("+insecure"):
            host, insecure = host.removesuffix("+insecure"), True
        if not host or not rest or ("." not in host and ":" not in host and host != "localhost"):
            raise ModuleError(f"OCI reference {ref!r}: expected HOST/REPOSITORY[:TAG][@sha256:…]")
        digest = None
        if "@" in rest:
            rest, digest = rest.split("@", 1)
            if not DIGEST_PATTERN.match(digest):
                raise ModuleError(f"OCI reference {ref!r}: {digest!r} is not a sha256 digest")
        tag = None
        repository, colon, maybe_tag = rest.rpartition(":")
        if colon and "/" not in maybe_tag:
            tag = maybe_tag
        else:
            repository = rest
        if not re.fullmatch(
            r"[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*", repository
        ):
            raise ModuleError(f"OCI reference {ref!r}: {repository!r} is not a repository name")
        if tag is None and digest is None:
            tag = "latest"
        return cls(host, repository, tag, digest, insecure)

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text
