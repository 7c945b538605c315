"""Transient and permanent apply failures in the executor, with a scripted fake API (the real
API server cannot be made to fail on demand; the integration tests cover everything else)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from pequod.api.resource_graph import ResourceGraph
from pequod.backoff import Backoff, FailureCounts
from pequod.executor.apply import GraphExecutor
from pequod.kube.client import ApiError, KubeClient
from pequod.kube.discovery import Discovery
from pequod.kube.resources import ResourceType

CONFIG_MAPS = ResourceType("", "v1", "ConfigMap", "configmaps", True)


class ScriptedApi:
    """Answers applies from a script of failures per object name, then succeeds."""

    def __init__(self, failures: dict[str, list[BaseException]]) -> None:
        self.failures = failures
        self.applied: list[str] = []

    async def resource_type(self, api_version: str, kind: str) -> ResourceType:
        return CONFIG_MAPS

    async def apply(self, rt: ResourceType, obj: dict[str, Any], **_: Any) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        script = self.failures.get(name) or []
        if script:
            raise script.pop(0)
        self.applied.append(name)
        return {**obj, "metadata": {**obj["metadata"], "uid": f"uid-{name}"}}

    async def get(
        self, rt: ResourceType, namespace: str | None, name: str, *, cached_read: bool = False
    ) -> None:
        return None

    def watch(self, rt: ResourceType) -> None:
        return None

    def written(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        return None


def graph(*names: str, depends: dict[str, str] | None = None) -> dict[str, Any]:
    depends = depends or {}
    return {
        "metadata": {"name": "g", "namespace": "ns", "uid": "graph-uid"},
        "spec": {
            "sourceRef": {"apiVersion": "example.com/v1", "kind": "App", "name": "a", "uid": "u"},
            "nodes": [
                {
                    "id": name,
                    "object": {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": name},
                    },
                    **({"dependsOn": [depends[name]]} if name in depends else {}),
                }
                for name in names
            ],
        },
    }


def executor(api: ScriptedApi, backoff: FailureCounts[tuple[str, str]]) -> GraphExecutor:
    return GraphExecutor(
        cast(KubeClient, api),
        cast(Discovery, api),
        api,
        apply_concurrency=8,
        ready_timeout=600.0,
        backoff=backoff,
    )


async def test_transient_errors_back_off_exponentially_per_node() -> None:
    api = ScriptedApi(
        {"flaky": [ApiError(503, "ServiceUnavailable", "etcd leader changed") for _ in range(3)]}
    )
    backoff: FailureCounts[tuple[str, str]] = FailureCounts(
        Backoff(base=1.0, cap=300.0, jitter=0.0)
    )
    run = executor(api, backoff)
    waits = []
    for _ in range(3):
        result = await run.execute(ResourceGraph.parse(graph("flaky", "steady")))
        assert result.nodes["flaky"].phase == "Applying"
        assert result.nodes["steady"].phase == "Ready"
        waits.append(result.retry_after)
    assert waits == [1.0, 2.0, 4.0]
    assert "attempt 3, retrying in 4.0 s" in result.nodes["flaky"].last_error
    result = await run.execute(ResourceGraph.parse(graph("flaky", "steady")))
    assert result.phase == "Ready"
    assert result.retry_after is None
    assert len(backoff) == 0  # success resets the count


async def test_connection_errors_and_throttling_are_transient() -> None:
    api = ScriptedApi(
        {
            "a": [ConnectionResetError("connection reset by peer")],
            "b": [ApiError(429, "TooManyRequests", "slow down")],
            "c": [TimeoutError()],
        }
    )
    result = await executor(api, FailureCounts(Backoff(jitter=0.0))).execute(
        ResourceGraph.parse(graph("a", "b", "c"))
    )
    assert {n.phase for n in result.nodes.values()} == {"Applying"}
    assert "ConnectionResetError" in result.nodes["a"].last_error
    assert "TooManyRequests" in result.nodes["b"].last_error
    assert "TimeoutError" in result.nodes["c"].last_error


async def test_permanent_errors_fail_the_node_and_block_its_dependents() -> None:
    api = ScriptedApi({"bad": [ApiError(422, "Invalid", "data.key: Invalid value")]})
    result = await executor(api, FailureCounts(Backoff())).execute(
        ResourceGraph.parse(graph("bad", "child", "other", depends={"child": "bad"}))
    )
    assert result.nodes["bad"].phase == "Error"
    assert result.nodes["bad"].last_error == "data.key: Invalid value"
    assert result.nodes["child"].phase == "Blocked"
    assert result.nodes["other"].phase == "Ready"
    assert result.phase == "Failed"
    assert result.retry_after is None


def test_backoff_is_capped_and_jittered() -> None:
    backoff: FailureCounts[tuple[str, str]] = FailureCounts(Backoff(base=1.0, cap=30.0, jitter=0.2))
    delays = [backoff.failed(("g", "n"))[1] for _ in range(10)]
    assert 1.0 <= delays[0] <= 1.2
    assert all(d <= 36.0 for d in delays)
    assert delays[-1] >= 24.0
    backoff.forget_where(lambda key: key[0] == "g")
    assert len(backoff) == 0


@pytest.mark.parametrize("status", [400, 403, 404, 422])
async def test_client_errors_are_not_retried(status: int) -> None:
    api = ScriptedApi({"x": [ApiError(status, "Nope", "refused")]})
    result = await executor(api, FailureCounts(Backoff())).execute(ResourceGraph.parse(graph("x")))
    assert result.nodes["x"].phase == "Error"
