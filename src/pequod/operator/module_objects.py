"""Reads the ConfigMaps and Secrets module sources name through the operator's Kubernetes
client: the operator's side of the resolver's ModuleObjects."""

from __future__ import annotations

from typing import Any

from pequod.kube.client import KubeClient
from pequod.kube.resources import CONFIG_MAPS, SECRETS


class KubeModuleObjects:
    def __init__(self, client: KubeClient) -> None:
        self.client = client

    async def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.client.get(CONFIG_MAPS, name, namespace)

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.client.get(SECRETS, name, namespace)
