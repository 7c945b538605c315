"""A small dynamic client on kubernetes-asyncio: any resource type, server-side apply, watch
streams. Everything Pequod sends to the API server goes through here."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio import config as k8s_config

from pequod.kube.ratelimit import RateLimiter
from pequod.kube.resources import ResourceType
from pequod.metrics import API_REQUESTS

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"

# Characters a YAML decoder does not take as themselves when unescaped (JSON escapes the C0
# controls already): DEL and the C1 controls, the line breaks NEL, LS and PS (folded into a
# space inside a quoted scalar), the byte order mark, U+FFFE and U+FFFF, surrogates.
_NOT_YAML_PRINTABLE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")


def apply_body(obj: dict[str, Any]) -> bytes:
    """An apply patch as the API server's YAML decoder reads it: JSON in UTF-8 with every
    character above U+FFFF as itself. JSON's ``\\ud83d\\ude00`` surrogate-pair escapes (what
    ``json.dumps`` writes by default) are invalid YAML escapes ("found invalid Unicode
    character escape code"), so an emoji anywhere in an object would make its apply fail for
    ever. What YAML does not allow raw is escaped, as a character of the BMP."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return _NOT_YAML_PRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode()


class ApiError(Exception):
    """A non-2xx answer; ``status`` is the HTTP status, ``reason`` the Status reason."""

    def __init__(self, status: int, reason: str, message: str, body: Any = None) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body
        super().__init__(f"{status} {reason}: {message}")

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def gone(self) -> bool:
        return self.status == 410

    @property
    def transient(self) -> bool:
        """Worth retrying: conflicts on resourceVersion, throttling, server errors, timeouts;
        not etcd's refusal of a request over its size limit, which the API server returns as
        a 500 but no retry mends."""
        if "request is too large" in self.message:
            return False
        return self.status in (409, 429) or self.status >= 500


TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, OSError, TimeoutError)
"""Errors below HTTP (connection refused or reset, timeouts): worth retrying."""


API_OR_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (ApiError, *TRANSPORT_ERRORS)
"""What a request may raise besides programming errors."""


@dataclass
class RequestCounters:
    """Requests by verb, for benchmarks and tests (no writes on an unchanged resync)."""

    by_verb: dict[str, int] = field(default_factory=dict)

    def count(self, verb: str) -> None:
        self.by_verb[verb] = self.by_verb.get(verb, 0) + 1
        API_REQUESTS.labels(verb).inc()

    @property
    def writes(self) -> int:
        return sum(
            n
            for verb, n in self.by_verb.items()
            if verb in ("create", "apply", "patch", "update", "delete")
        )


class KubeClient:
    def __init__(self, api: k8s.ApiClient, *, rate_limiter: RateLimiter | None = None) -> None:
        self.api = api
        self.rate_limiter = rate_limiter
        self.api.user_agent = "pequod"
        # kubernetes-asyncio's session trusts the environment, which costs every request two
        # thread-pool hops (a ~/.netrc read and a proxy lookup). Without proxy variables there
        # is nothing to find; with them, they keep working.
        session = getattr(api.rest_client, "pool_manager", None)
        if isinstance(session, aiohttp.ClientSession) and not urllib.request.getproxies():
            session._trust_env = False
        self.counters = RequestCounters()

    @classmethod
    async def from_kubeconfig(
        cls,
        path: str | None = None,
        context: str | None = None,
        *,
        rate_limiter: RateLimiter | None = None,
    ) -> KubeClient:
        """From a kubeconfig file, or the in-cluster service account when ``path`` is None and
        the process runs in a pod."""
        configuration = k8s.Configuration()
        if path is None:
            try:
                k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
            except k8s_config.ConfigException:
                await k8s_config.load_kube_config(
                    context=context, client_configuration=configuration
                )
        else:
            await k8s_config.load_kube_config(
                config_file=path, context=context, client_configuration=configuration
            )
        return cls(k8s.ApiClient(configuration), rate_limiter=rate_limiter)

    async def close(self) -> None:
        await self.api.close()

    # -- raw -------------------------------------------------------------------------------

    async def request(
        self,
        verb: str,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        request_timeout: float = 60.0,
    ) -> Any:
        self.counters.count(verb)
        if self.rate_limiter is not None:
            await self.rate_limiter.acquire()
        response = await self.api.call_api(
            path,
            method,
            query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _preload_content=False,
            _request_timeout=request_timeout,
        )
        try:
            content = await response.read()
        finally:
            response.release()
        if response.status >= 400:
            raise _api_error(response.status, content)
        return orjson.loads(content) if content else None

    # -- typed verbs -----------------------------------------------------------------------

    async def get(
        self,
        rt: ResourceType,
        name: str,
        namespace: str | None = None,
        *,
        cached_read: bool = False,
    ) -> dict[str, Any] | None:
        """The object, or None. ``cached_read`` lets the API server answer from its watch cache
        (``resourceVersion=0``: no etcd read, possibly a few milliseconds stale)."""
        query = [("resourceVersion", "0")] if cached_read else None
        try:
            result: dict[str, Any] = await self.request(
                "get", "GET", rt.object_path(name, namespace), query=query
            )
        except ApiError as error:
            if error.not_found:
                return None
            raise
        return result

    async def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        query: list[tuple[str, str]] = []
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        if resource_version is not None:
            query.append(("resourceVersion", resource_version))
        result: dict[str, Any] = await self.request(
            "list", "GET", rt.collection_path(namespace), query=query, request_timeout=300
        )
        return result

    async def apply(
        self,
        rt: ResourceType,
        obj: dict[str, Any],
        *,
        field_manager: str,
        force: bool = False,
        dry_run: bool = False,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Server-side apply of ``obj`` (which names itself) with ``field_manager``."""
        metadata = obj["metadata"]
        path = rt.object_path(metadata["name"], metadata.get("namespace"))
        if subresource:
            path += f"/{subresource}"
        query = [("fieldManager", field_manager), ("force", "true" if force else "false")]
        if dry_run:
            query.append(("dryRun", "All"))
        # Sent as bytes: kubernetes-asyncio would json.dumps a dict with ASCII escapes. The
        # charset parameter (which the API server strips) keeps it from doing so.
        result: dict[str, Any] = await self.request(
            "apply",
            "PATCH",
            path,
            query=query,
            body=apply_body(obj),
            content_type=f"{APPLY_PATCH}; charset=utf-8",
        )
        return result

    async def merge_patch(
        self,
        rt: ResourceType,
        name: str,
        namespace: str | None,
        patch: dict[str, Any],
        *,
        subresource: str | None = None,
        field_manager: str | None = None,
    ) -> dict[str, Any]:
        path = rt.object_path(name, namespace) + (f"/{subresource}" if subresource else "")
        query = [("fieldManager", field_manager)] if field_manager else []
        result: dict[str, Any] = await self.request(
            "patch", "PATCH", path, query=query, body=patch, content_type=MERGE_PATCH
        )
        return result

    async def create(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        namespace = obj.get("metadata", {}).get("namespace")
        result: dict[str, Any] = await self.request(
            "create",
            "POST",
            rt.collection_path(namespace),
            body=obj,
            query=[("fieldManager", "pequod")],
        )
        return result

    async def delete(
        self,
        rt: ResourceType,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
        uid: str | None = None,
    ) -> bool:
        """Deletes; ``False`` when it was already gone. ``uid`` guards against deleting a
        newer object of the same name."""
        body: dict[str, Any] = {"propagationPolicy": propagation}
        if uid:
            body["preconditions"] = {"uid": uid}
        try:
            await self.request("delete", "DELETE", rt.object_path(name, namespace), body=body)
        except ApiError as error:
            if error.not_found:
                return False
            raise
        return True

    async def watch(
        self,
        rt: ResourceType,
        namespace: str | None,
        resource_version: str,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
        inactivity_timeout: float = 120.0,
    ) -> AsyncIterator[dict[str, Any]]:
        """Yields watch events (``{"type", "object"}``) from ``resource_version``, with
        bookmarks. An ERROR event raises :class:`ApiError` (410 when the version expired);
        no line for ``inactivity_timeout`` seconds raises :class:`TimeoutError`."""
        query = [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(timeout_seconds)),
        ]
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        self.counters.count("watch")
        if self.rate_limiter is not None:
            await self.rate_limiter.acquire()
        response = await self.api.call_api(
            rt.collection_path(namespace),
            "GET",
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
            _return_http_data_only=True,
            _preload_content=False,
            _request_timeout=timeout_seconds + 30,
        )
        try:
            if response.status >= 400:
                raise _api_error(response.status, await response.read())
            while True:
                # asyncio.timeout, not wait_for: in Python 3.11 wait_for can swallow a
                # cancellation that arrives as a line does, and the watch would run on.
                async with asyncio.timeout(inactivity_timeout):
                    line = await response.content.readline()
                if not line:
                    return
                event: dict[str, Any] = orjson.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object", {})
                    raise ApiError(
                        int(status.get("code", 500)),
                        str(status.get("reason", "")),
                        str(status.get("message", "")),
                        status,
                    )
                yield event
        finally:
            response.close()


def _api_error(status: int, content: bytes) -> ApiError:
    try:
        body = orjson.loads(content)
    except ValueError:
        return ApiError(status, "", content.decode(errors="replace")[:500])
    if not isinstance(body, dict):
        return ApiError(status, "", str(body)[:500])
    return ApiError(status, str(body.get("reason", "")), str(body.get("message", "")), body)
