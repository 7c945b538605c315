"""Finds the resource type (plural, scope) of an apiVersion and kind from the API server's
discovery, including kinds created at runtime."""

from __future__ import annotations

from pequod.kube.client import ApiError, KubeClient
from pequod.kube.resources import ResourceType, split_api_version


class UnknownKindError(LookupError):
    pass


class Discovery:
    def __init__(self, client: KubeClient) -> None:
        self._client = client
        self._by_group_version: dict[str, dict[str, ResourceType]] = {}

    async def resource_type(self, api_version: str, kind: str) -> ResourceType:
        """The resource type of ``kind``; looks the group version up again once on a miss, so
        a CRD established a moment ago is found."""
        known = self._by_group_version.get(api_version)
        if known is None or kind not in known:
            known = await self._refresh(api_version)
        if kind not in known:
            raise UnknownKindError(f"the API server does not serve {kind} in {api_version}")
        return known[kind]

    def invalidate(self, api_version: str) -> None:
        self._by_group_version.pop(api_version, None)

    async def _refresh(self, api_version: str) -> dict[str, ResourceType]:
        group, version = split_api_version(api_version)
        path = f"/apis/{group}/{version}" if group else f"/api/{version}"
        try:
            listing = await self._client.request("discovery", "GET", path)
        except ApiError as error:
            if error.not_found:
                self._by_group_version[api_version] = {}
                return {}
            raise
        found = {
            resource["kind"]: ResourceType(
                group, version, resource["kind"], resource["name"], resource["namespaced"]
            )
            for resource in listing.get("resources", [])
            if "/" not in resource["name"]
        }
        self._by_group_version[api_version] = found
        return found
