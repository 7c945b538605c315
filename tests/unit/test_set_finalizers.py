"""set_finalizers makes its change again on a fresh read when its cached copy is stale (a 409),
without dropping a finalizer another party added meanwhile; the real API server's behaviour is
exercised by every integration test that deletes an instance."""

from __future__ import annotations

from typing import Any

import pytest

from pequod.kube.client import ApiError
from pequod.kube.resources import ResourceType
from pequod.kube.writes import set_finalizers

THINGS = ResourceType("example.com", "v1", "Thing", "things", True)


class _Client:
    """Holds one stored object; a patch whose resourceVersion is stale is a 409."""

    def __init__(self, stored: dict[str, Any]) -> None:
        self.stored = stored
        self.patches: list[list[str]] = []

    async def merge_patch(
        self, rt: ResourceType, name: str, namespace: str | None, patch: Any, **_: Any
    ) -> dict[str, Any]:
        metadata = patch["metadata"]
        self.patches.append(list(metadata["finalizers"]))
        if metadata["resourceVersion"] != self.stored["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", "the object has been modified")
        self.stored["metadata"]["finalizers"] = metadata["finalizers"]
        self.stored["metadata"]["resourceVersion"] += "+"
        return self.stored

    async def get(self, rt: ResourceType, name: str, namespace: str | None) -> dict[str, Any]:
        return {"metadata": dict(self.stored["metadata"])}


def thing(resource_version: str, finalizers: list[str]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "a",
            "namespace": "n",
            "uid": "u1",
            "resourceVersion": resource_version,
            "finalizers": finalizers,
        }
    }


async def test_a_stale_copy_is_read_again_and_the_same_change_made() -> None:
    client = _Client(thing("2", ["ours", "theirs"]))  # "theirs" was added after our read
    await set_finalizers(client, THINGS, thing("1", ["ours"]), [], field_manager="test")  # type: ignore[arg-type]
    assert client.patches == [[], ["theirs"]]
    assert client.stored["metadata"]["finalizers"] == ["theirs"]


async def test_an_addition_is_kept_on_the_retry() -> None:
    client = _Client(thing("2", ["theirs"]))
    await set_finalizers(client, THINGS, thing("1", []), ["ours"], field_manager="test")  # type: ignore[arg-type]
    assert client.stored["metadata"]["finalizers"] == ["theirs", "ours"]


async def test_a_change_already_made_writes_nothing_more() -> None:
    client = _Client(thing("2", []))
    await set_finalizers(client, THINGS, thing("1", ["ours"]), [], field_manager="test")  # type: ignore[arg-type]
    assert client.patches == [[]]


async def test_other_errors_are_raised() -> None:
    class Refusing(_Client):
        async def merge_patch(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            raise ApiError(403, "Forbidden", "no")

    with pytest.raises(ApiError):
        await set_finalizers(
            Refusing(thing("1", [])),  # type: ignore[arg-type]
            THINGS,
            thing("1", []),
            ["ours"],
            field_manager="test",
        )
