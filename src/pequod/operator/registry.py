"""The platform APIs the operator serves right now, one per ready Transform."""

from __future__ import annotations

from dataclasses import dataclass, field

from pequod.delivery.reference import ModuleReference
from pequod.graph.validate import NamespacePolicy
from pequod.kube.informer import Informer
from pequod.kube.resources import ResourceType
from pequod.module.source import ModuleSource


@dataclass(frozen=True)
class InstanceKey:
    transform: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.transform}:{self.namespace}/{self.name}"


@dataclass
class ServedApi:
    transform: str
    resource_type: ResourceType
    module: ModuleSource
    policies: tuple[ModuleSource, ...]
    allowed_namespaces: tuple[str, ...]
    allow_cluster_scoped: bool
    instance_platform_refs: tuple[ModuleReference, ...]
    informer: Informer
    module_name: str | None = None
    module_version: str | None = None

    def namespace_policy(self, namespace: str) -> NamespacePolicy:
        return NamespacePolicy(namespace, self.allowed_namespaces, self.allow_cluster_scoped)

    def instance_keys(self) -> list[InstanceKey]:
        return [
            InstanceKey(self.transform, obj["metadata"]["namespace"], obj["metadata"]["name"])
            for obj in self.informer.list()
        ]


@dataclass
class ApiRegistry:
    served: dict[str, ServedApi] = field(default_factory=dict)

    def get(self, transform: str) -> ServedApi | None:
        return self.served.get(transform)
