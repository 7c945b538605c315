"""The resolver on every source that needs no network: embedded, a directory, inline and
ConfigMap modules (read through the ModuleObjects it is given), and its refusals."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pequod.api.names import OPERATOR_NAMESPACE
from pequod.delivery import source_namespaces
from pequod.delivery.cache import ModuleCache
from pequod.delivery.reference import DIRECTORY, ModuleReference
from pequod.delivery.resolver import ModuleResolver
from pequod.delivery.source_namespaces import ModuleSourceNotAllowed, SourceNamespaces
from pequod.module.embedded import load_embedded
from pequod.module.source import ModuleError, load_directory

MODULE = "package m\n#Input: {}\n"


class FakeObjects:
    def __init__(self, config_maps: dict[str, dict[str, Any]] | None = None) -> None:
        self.config_maps = config_maps or {}
        self.reads: list[str] = []

    async def get_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append(f"configmap {namespace}/{name}")
        return self.config_maps.get(f"{namespace}/{name}")

    async def get_secret(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads.append(f"secret {namespace}/{name}")
        return None


def _resolver(tmp_path: Path, objects: FakeObjects | None = None) -> ModuleResolver:
    return ModuleResolver(objects, cache=ModuleCache(tmp_path / "cache"))


def test_the_command_line_forms() -> None:
    assert ModuleReference.from_argument("embedded:webservice@1.1.0") == ModuleReference(
        "embedded", "embedded:webservice@1.1.0"
    )
    assert ModuleReference.from_argument("./modules/web") == ModuleReference(
        DIRECTORY, "./modules/web"
    )


def test_embedded_with_or_without_the_prefix(tmp_path: Path) -> None:
    resolver = _resolver(tmp_path)
    expected = load_embedded("embedded:webservice@1.1.0")
    for ref in ("embedded:webservice@1.1.0", "webservice@1.1.0"):
        assert asyncio.run(resolver.resolve(ModuleReference("embedded", ref))) == expected


def test_a_directory_is_named_as_given(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "module.cue").write_text(MODULE)
    module = _resolver(tmp_path).load(str(tmp_path / "m"))
    assert module == load_directory(tmp_path / "m", reference=str(tmp_path / "m"))
    with pytest.raises(ModuleError, match="not a directory"):
        _resolver(tmp_path).load(str(tmp_path / "missing"))


def test_inline_is_written_once_by_content(tmp_path: Path) -> None:
    resolver = _resolver(tmp_path)
    first = asyncio.run(resolver.resolve(ModuleReference("inline", MODULE)))
    again = asyncio.run(resolver.resolve(ModuleReference("inline", MODULE)))
    assert first == again
    assert first.reference == "inline"
    assert first.directory.is_relative_to((tmp_path / "cache" / "objects").resolve())
    assert (first.directory / "module.cue").read_text() == MODULE


def test_a_config_map_is_read_through_the_objects(tmp_path: Path) -> None:
    data = {"data": {"module.cue": MODULE, "notes.txt": "not cue"}}
    objects = FakeObjects({f"{OPERATOR_NAMESPACE}/web": data})
    resolver = _resolver(tmp_path, objects)
    reference = ModuleReference("configmap", f"{OPERATOR_NAMESPACE}/web")
    module = asyncio.run(resolver.resolve(reference))
    assert module.reference == f"configmap:{OPERATOR_NAMESPACE}/web"
    assert sorted(p.name for p in module.directory.iterdir()) == ["module.cue"]
    assert objects.reads == [f"configmap {OPERATOR_NAMESPACE}/web"]

    # An informer's copy saves the read.
    cached = asyncio.run(resolver.resolve(reference, cached_config_map=data))
    assert cached == module
    assert len(objects.reads) == 1


def test_config_map_failures(tmp_path: Path) -> None:
    objects = FakeObjects({f"{OPERATOR_NAMESPACE}/empty": {"data": {"a.txt": "x"}}})
    resolver = _resolver(tmp_path, objects)
    with pytest.raises(ModuleError, match="not found"):
        asyncio.run(resolver.resolve(ModuleReference("configmap", f"{OPERATOR_NAMESPACE}/gone")))
    with pytest.raises(ModuleError, match=r"no \*\.cue keys"):
        asyncio.run(resolver.resolve(ModuleReference("configmap", f"{OPERATOR_NAMESPACE}/empty")))
    with pytest.raises(ModuleError, match="must be NAMESPACE/NAME"):
        asyncio.run(resolver.resolve(ModuleReference("configmap", "no-namespace")))
    with pytest.raises(ModuleError, match="only in a cluster"):
        asyncio.run(
            _resolver(tmp_path).resolve(ModuleReference("configmap", f"{OPERATOR_NAMESPACE}/x"))
        )


def test_refused_sources_are_not_read(tmp_path: Path) -> None:
    objects = FakeObjects()
    resolver = ModuleResolver(
        objects,
        cache=ModuleCache(tmp_path / "cache"),
        source_namespaces=SourceNamespaces("ops"),
    )
    with pytest.raises(ModuleSourceNotAllowed, match="ConfigMap team-a/web"):
        asyncio.run(resolver.resolve(ModuleReference("configmap", "team-a/web")))
    pulled = ModuleReference("oci", "registry.test/m:1", pull_secret=("team-a", "creds"))
    with pytest.raises(ModuleSourceNotAllowed, match="pull Secret team-a/creds"):
        asyncio.run(resolver.resolve(pulled))
    assert objects.reads == []


def test_a_missing_pull_secret_is_reported_before_any_fetch(tmp_path: Path) -> None:
    objects = FakeObjects()
    reference = ModuleReference("git", "https://git.test/m.git@main", pull_secret=("ops", "s"))
    resolver = ModuleResolver(
        objects, cache=ModuleCache(tmp_path / "cache"), source_namespaces=SourceNamespaces("ops")
    )
    with pytest.raises(ModuleError, match="pull secret ops/s not found"):
        asyncio.run(resolver.resolve(reference))
    assert objects.reads == ["secret ops/s"]


def test_unknown_types_and_the_default_namespace(tmp_path: Path) -> None:
    with pytest.raises(ModuleError, match="'ftp' is not supported"):
        asyncio.run(_resolver(tmp_path).resolve(ModuleReference("ftp", "x")))
    # The offline engine cannot import the API's constant: the two must stay equal.
    assert source_namespaces.OPERATOR_NAMESPACE == OPERATOR_NAMESPACE
