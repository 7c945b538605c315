"""The OCI registry client, through oras (authentication handshakes, blob and manifest
transfer); Pequod checks every digest itself. Kept apart from :mod:`pequod.delivery.oci` so
that an operator whose modules come from elsewhere never loads oras and requests."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import oras.container
import oras.provider
import requests

from pequod.delivery.archive import pack, unpack_tar, unpack_zip
from pequod.delivery.oci import (
    ARTIFACT_TYPE,
    CONFIG_MEDIA_TYPE,
    CUE_CONFIG_MEDIA_TYPE,
    CUE_LAYER_MEDIA_TYPE,
    LAYER_MEDIA_TYPE,
    MANIFEST_ACCEPT,
    MANIFEST_MEDIA_TYPE,
    FetchError,
    OciReference,
)
from pequod.module.source import directory_digest


class _Registry(oras.provider.Registry):  # type: ignore[misc]
    """oras's registry client without its built-in retry loop (which sleeps for minutes on a
    stopped registry); the fetcher retries with its own backoff and time limit."""

    do_request = oras.provider.Registry.do_request.__wrapped__


class OciClient:
    """Synchronous (the oras client is); the fetcher runs it in a worker thread."""

    def __init__(
        self,
        reference: OciReference,
        *,
        credentials: tuple[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.reference = reference
        self.timeout = timeout
        self.registry = self._client("token")
        # Registries challenge for Basic (htpasswd) or Bearer (a token service, which also
        # hands out anonymous tokens); ask which, and let oras speak it.
        scheme = self._challenge_scheme()
        self._unauthenticated = scheme == "basic" and not credentials
        if scheme == "basic" and credentials:
            self.registry = self._client("basic")
        if credentials:
            self.registry.auth.set_basic_auth(*credentials)
        self.container = oras.container.Container(
            f"{reference.registry}/{reference.repository}:{reference.tag or 'latest'}"
        )

    def _client(self, auth_backend: str) -> _Registry:
        registry = _Registry(
            hostname=self.reference.registry,
            insecure=self.reference.insecure,
            auth_backend=auth_backend,
        )
        registry.session.request = functools.partial(registry.session.request, timeout=self.timeout)
        return registry

    def _challenge_scheme(self) -> str:
        url = f"{self.registry.prefix}://{self.reference.registry}/v2/"
        try:
            response = self.registry.session.get(url)
        except requests.RequestException as error:
            raise FetchError(
                f"registry {self.reference.registry} unreachable: {error}", transient=True
            ) from error
        challenge = response.headers.get("Www-Authenticate", "")
        return challenge.split(" ", 1)[0].lower() or "token"

    def _request(
        self, url: str, method: str = "GET", *, accept_missing: bool = False, **kwargs: Any
    ) -> requests.Response:
        try:
            response: requests.Response
            if self._unauthenticated:  # nothing to answer a Basic challenge with
                response = self.registry.session.request(method, url, **kwargs)
            else:
                response = self.registry.do_request(url, method, **kwargs)
        except requests.RequestException as error:
            raise FetchError(
                f"registry {self.reference.registry} unreachable: {error}", transient=True
            ) from error
        except ValueError as error:  # oras: an authentication challenge it cannot answer
            raise FetchError(f"registry {self.reference.registry}: {error}") from error
        if response.status_code in (401, 403):
            raise FetchError(
                f"registry {self.reference.registry} refused access to "
                f"{self.reference.repository} ({response.status_code}): check the pull secret"
            )
        if response.status_code == 404 and accept_missing:
            return response
        if response.status_code == 404:
            raise FetchError(f"{self.reference} not found in the registry")
        if response.status_code == 429 or response.status_code >= 500:
            raise FetchError(
                f"registry {self.reference.registry} answered {response.status_code}",
                transient=True,
            )
        if response.status_code >= 400:
            raise FetchError(
                f"registry {self.reference.registry} answered {response.status_code}: "
                f"{response.text[:300]}"
            )
        return response

    def _manifest_url(self, reference: str) -> str:
        base = f"{self.registry.prefix}://{self.reference.registry}/v2/{self.reference.repository}"
        return f"{base}/manifests/{reference}"

    def _blob_url(self, digest: str) -> str:
        base = f"{self.registry.prefix}://{self.reference.registry}/v2/{self.reference.repository}"
        return f"{base}/blobs/{digest}"

    # -- pull ------------------------------------------------------------------------------

    def resolve(self) -> str:
        """The manifest digest the reference names now (a tag moves; a digest does not).
        A reference with both (``repo:tag@sha256:…``) asserts the tag still points at that
        digest: if it does not, the module is refused."""
        if self.reference.digest and not self.reference.tag:
            return self.reference.digest
        raw = self._request(
            self._manifest_url(self.reference.tag or "latest"), headers={"Accept": MANIFEST_ACCEPT}
        ).content
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        if self.reference.digest and digest != self.reference.digest:
            raise FetchError(
                f"{self.reference}: tag {self.reference.tag!r} points at {digest}, not at the "
                "digest in the reference; refusing the module"
            )
        return digest

    def fetch(self, manifest_digest: str, destination: Path) -> str:
        """Downloads the manifest ``manifest_digest`` names and its module layer, checks every
        digest, and unpacks the module into ``destination/artifact``. Returns the artifact's
        format: ``pequod`` or ``cue``."""
        raw = self._request(
            self._manifest_url(manifest_digest), headers={"Accept": MANIFEST_ACCEPT}
        ).content
        actual = "sha256:" + hashlib.sha256(raw).hexdigest()
        if actual != manifest_digest:
            raise FetchError(
                f"{self.reference}: the registry served a manifest with digest {actual}, "
                f"not {manifest_digest}; refusing the module"
            )
        manifest = json.loads(raw)
        config_type = (manifest.get("config") or {}).get("mediaType", "")
        layers = manifest.get("layers") or []
        if config_type == CONFIG_MEDIA_TYPE or manifest.get("artifactType") == ARTIFACT_TYPE:
            form, wanted = "pequod", LAYER_MEDIA_TYPE
        elif config_type == CUE_CONFIG_MEDIA_TYPE:
            form, wanted = "cue", CUE_LAYER_MEDIA_TYPE
        else:
            raise FetchError(
                f"{self.reference} is not a module artifact (config media type "
                f"{config_type or 'none'!r}; expected {CONFIG_MEDIA_TYPE} "
                f"or {CUE_CONFIG_MEDIA_TYPE})"
            )
        layer = next((item for item in layers if item.get("mediaType") == wanted), None)
        if layer is None:
            raise FetchError(f"{self.reference}: no {wanted} layer in the manifest")
        data = self._request(self._blob_url(layer["digest"])).content
        if "sha256:" + hashlib.sha256(data).hexdigest() != layer["digest"]:
            raise FetchError(f"{self.reference}: layer {layer['digest']} does not match its digest")
        staging = destination / "artifact"
        staging.mkdir(parents=True)
        if form == "pequod":
            unpack_tar(data, staging)
        else:
            unpack_zip(data, staging)
        return form

    # -- push ------------------------------------------------------------------------------

    def push(self, directory: Path, *, name: str = "", version: str = "") -> str:
        """Pushes ``directory`` as a Pequod module artifact; returns the manifest digest."""
        layer = pack(directory)
        config = json.dumps(
            {"name": name, "version": version, "contentDigest": directory_digest(directory)},
            sort_keys=True,
        ).encode()
        descriptors = []
        for media_type, blob in ((CONFIG_MEDIA_TYPE, config), (LAYER_MEDIA_TYPE, layer)):
            digest = "sha256:" + hashlib.sha256(blob).hexdigest()
            descriptors.append({"mediaType": media_type, "digest": digest, "size": len(blob)})
            self._upload_blob(digest, blob)
        descriptors[1]["annotations"] = {"org.opencontainers.image.title": "module.tar.gz"}
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": ARTIFACT_TYPE,
            "config": descriptors[0],
            "layers": [descriptors[1]],
            "annotations": {
                "org.opencontainers.image.title": name,
                "org.opencontainers.image.version": version,
            },
        }
        raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
        target = self.reference.digest or self.reference.tag or "latest"
        self._request(
            self._manifest_url(target),
            "PUT",
            data=raw,
            headers={"Content-Type": MANIFEST_MEDIA_TYPE},
        )
        return "sha256:" + hashlib.sha256(raw).hexdigest()

    def _upload_blob(self, digest: str, blob: bytes) -> None:
        if self._request(self._blob_url(digest), "HEAD", accept_missing=True).status_code == 200:
            return
        base = f"{self.registry.prefix}://{self.reference.registry}/v2/{self.reference.repository}"
        start = self._request(f"{base}/blobs/uploads/", "POST")
        location = start.headers["Location"]
        if location.startswith("/"):
            location = f"{self.registry.prefix}://{self.reference.registry}{location}"
        separator = "&" if "?" in location else "?"
        self._request(
            f"{location}{separator}digest={digest}",
            "PUT",
            data=blob,
            headers={"Content-Type": "application/octet-stream"},
        )
