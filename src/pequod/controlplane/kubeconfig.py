"""Writes kubeconfig files that point at the local control plane."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from pequod.controlplane.pki import KeyPair


def _inline(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(
    path: Path, *, server: str, ca_certificate: Path, client: KeyPair, context: str
) -> Path:
    """A self-contained kubeconfig (certificates inlined) with one cluster, user and context."""
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": context,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": _inline(ca_certificate),
                },
            }
        ],
        "users": [
            {
                "name": context,
                "user": {
                    "client-certificate-data": _inline(client.certificate),
                    "client-key-data": _inline(client.key),
                },
            }
        ],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
        "current-context": context,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    path.chmod(0o600)
    return path
