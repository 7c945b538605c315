"""Module delivery parts that need no server: references, archives, the cache, and the
fetcher's single flight and TTL (with a scripted resolver)."""

from __future__ import annotations

import asyncio
import io
import tarfile
from pathlib import Path

import pytest

from pequod.delivery.archive import pack, unpack_tar
from pequod.delivery.cache import ModuleCache
from pequod.delivery.fetcher import FetchSettings, ModuleFetcher
from pequod.delivery.git import GitReference
from pequod.delivery.oci import FetchError, OciReference
from pequod.module.source import ModuleError

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ghcr.io/acme/web:1.0", ("ghcr.io", "acme/web", "1.0", None, False)),
        ("oci://ghcr.io/acme/web", ("ghcr.io", "acme/web", "latest", None, False)),
        (f"127.0.0.1:5000+insecure/web@{DIGEST}", ("127.0.0.1:5000", "web", None, DIGEST, True)),
        (f"localhost/web:v1@{DIGEST}", ("localhost", "web", "v1", DIGEST, False)),
    ],
)
def test_oci_references(text: str, expected: tuple[object, ...]) -> None:
    reference = OciReference.parse(text)
    assert (
        reference.registry,
        reference.repository,
        reference.tag,
        reference.digest,
        reference.insecure,
    ) == expected


@pytest.mark.parametrize(
    "text", ["web:1.0", "ghcr.io/", "ghcr.io/Acme/Web:1", "ghcr.io/web@sha256:short"]
)
def test_bad_oci_references(text: str) -> None:
    with pytest.raises(ModuleError, match="OCI reference"):
        OciReference.parse(text)


def test_git_references() -> None:
    reference = GitReference.parse("https://git.example/org/p.git?ref=v1.2.0&path=mods/web")
    assert reference == GitReference("https://git.example/org/p.git", "v1.2.0", "mods/web")
    assert not reference.pinned
    assert GitReference.parse("file:///srv/p.git").ref == "main"
    assert GitReference.parse(f"ssh://git@host/p.git?ref={'b' * 40}").pinned
    with pytest.raises(ModuleError, match="expected an https"):
        GitReference.parse("/srv/p.git")
    with pytest.raises(ModuleError, match="unknown parameter"):
        GitReference.parse("https://h/p.git?branch=main")


def test_pack_is_reproducible_and_unpacks(tmp_path: Path) -> None:
    module = tmp_path / "module"
    (module / "cue.mod").mkdir(parents=True)
    (module / "a.cue").write_text("package a\n")
    (module / "cue.mod" / "module.cue").write_text('module: "x.example/a"\n')
    assert pack(module) == pack(module)
    unpack_tar(pack(module), tmp_path / "out")
    assert (tmp_path / "out" / "cue.mod" / "module.cue").read_text() == 'module: "x.example/a"\n'


def test_unpacking_refuses_paths_that_escape(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("../evil.cue")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ModuleError, match="escapes"):
        unpack_tar(buffer.getvalue(), tmp_path / "out")
    assert not (tmp_path / "evil.cue").exists()


def test_cache_evicts_least_recently_used(tmp_path: Path) -> None:
    cache = ModuleCache(tmp_path, max_bytes=2500)
    for key in ("one", "two"):
        cache.put(key, lambda d: (d / "f").write_bytes(b"x" * 1000))
    assert cache.get("one") is not None  # "two" is now the least recently used
    cache.put("three", lambda d: (d / "f").write_bytes(b"x" * 1000))
    assert cache.get("two") is None
    assert cache.get("one") is not None
    assert cache.get("three") is not None


def test_a_failed_fill_leaves_nothing(tmp_path: Path) -> None:
    cache = ModuleCache(tmp_path)

    def fail(directory: Path) -> None:
        (directory / "partial").write_text("half")
        raise FetchError("connection reset")

    with pytest.raises(FetchError):
        cache.put("key", fail)
    assert cache.get("key") is None
    assert [p.name for p in tmp_path.iterdir()] == ["objects"]


async def test_concurrent_resolutions_of_one_reference_ask_once(tmp_path: Path) -> None:
    fetcher = ModuleFetcher(tmp_path, FetchSettings(resolve_ttl=60))
    calls = []

    def resolve() -> str:
        calls.append(1)
        return DIGEST

    results = await asyncio.gather(*(fetcher._resolve("oci:x", "oci", resolve) for _ in range(5)))
    assert results == [DIGEST] * 5
    assert len(calls) == 1
    fetcher.forget_resolutions()
    await fetcher._resolve("oci:x", "oci", resolve)
    assert len(calls) == 2


async def test_transient_failures_are_retried_then_reported(tmp_path: Path) -> None:
    fetcher = ModuleFetcher(tmp_path, FetchSettings(attempts=3))
    attempts = []

    def unreachable() -> str:
        attempts.append(1)
        raise FetchError("registry unreachable", transient=True)

    with pytest.raises(FetchError, match="unreachable"):
        await fetcher._resolve("oci:y", "oci", unreachable)
    assert len(attempts) == 3

    def refused() -> str:
        attempts.append(1)
        raise FetchError("refused access")

    with pytest.raises(FetchError, match="refused"):
        await fetcher._resolve("oci:z", "oci", refused)
    assert len(attempts) == 4  # permanent: not retried
