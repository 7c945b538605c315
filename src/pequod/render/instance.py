"""What a module is rendered with: an instance's metadata and spec, and its render hash."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Instance:
    name: str
    namespace: str
    spec: dict[str, Any]
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_object(
        cls, obj: dict[str, Any], *, name: str | None = None, namespace: str | None = None
    ) -> Instance:
        """From a Kubernetes object (or a `{metadata, spec}` document); arguments override."""
        metadata = obj.get("metadata") or {}
        spec = obj.get("spec")
        spec = {} if spec is None else spec
        spec = (
            {k: v for k, v in spec.items() if k != "platformRef"}
            if isinstance(spec, dict)
            else spec
        )
        return cls(
            name=name or metadata.get("name") or "example",
            namespace=namespace or metadata.get("namespace") or "default",
            spec=spec,
            labels=dict(metadata.get("labels") or {}),
            annotations=dict(metadata.get("annotations") or {}),
        )

    def render_input(self) -> dict[str, Any]:
        """The value unified with ``#Render.input``."""
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if self.labels:
            metadata["labels"] = self.labels
        if self.annotations:
            metadata["annotations"] = self.annotations
        return {"metadata": metadata, "spec": self.spec}


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def render_hash(
    module_digest: str,
    instance: Instance,
    policy_digests: tuple[str, ...] = (),
    observed: dict[str, Any] | None = None,
) -> str:
    """sha256 of the module digest, the policies' digests, the canonical input and, for a
    render that reads live state, the canonical observed values it is given.

    Anything that can change the rendered graph is in it, so an equal hash means an equal render.
    A render that reads nothing has the hash it had before observed values existed.
    """
    digest = hashlib.sha256()
    for part in (module_digest, *policy_digests):
        digest.update(part.encode() + b"\n")
    digest.update(canonical_json(instance.render_input()))
    if observed is not None:
        digest.update(b"\nobserved:" + canonical_json(observed))
    return "sha256:" + digest.hexdigest()
