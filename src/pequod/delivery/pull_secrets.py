"""Reads a module's pull credentials out of a Secret's data: a registry's entry of a
kubernetes.io/dockerconfigjson Secret for OCI, user and password or an SSH key for Git."""

from __future__ import annotations

import base64
import json
from typing import Any

from pequod.delivery.git import GitCredentials
from pequod.delivery.oci import OciReference
from pequod.module.source import ModuleError


def decode_secret(secret: dict[str, Any]) -> dict[str, str]:
    return {
        key: base64.b64decode(value).decode(errors="replace")
        for key, value in (secret.get("data") or {}).items()
    }


def registry_credentials(secret: dict[str, str], reference: OciReference) -> tuple[str, str]:
    """The registry's entry of a kubernetes.io/dockerconfigjson Secret."""
    try:
        auths = json.loads(secret[".dockerconfigjson"])["auths"]
    except (KeyError, json.JSONDecodeError) as error:
        raise ModuleError(
            "the pull secret is not a kubernetes.io/dockerconfigjson Secret "
            "(no .dockerconfigjson with auths)"
        ) from error
    host = reference.registry
    for server, entry in auths.items():
        if server.removeprefix("https://").removeprefix("http://").rstrip("/") == host:
            if entry.get("username"):
                return entry["username"], entry.get("password", "")
            user, _, password = base64.b64decode(entry.get("auth", "")).decode().partition(":")
            return user, password
    raise ModuleError(f"the pull secret has no credentials for {host}")


def git_credentials(secret: dict[str, str]) -> GitCredentials:
    """Keys: username and password (or token), and optionally ca.crt, for HTTPS;
    ssh-privatekey (a kubernetes.io/ssh-auth Secret) and known_hosts for SSH."""
    return GitCredentials(
        username=secret.get("username", ""),
        password=secret.get("password") or secret.get("token", ""),
        ssh_private_key=secret.get("ssh-privatekey", ""),
        known_hosts=secret.get("known_hosts", ""),
        ca_certificate=secret.get("ca.crt", ""),
    )
