"""The one module cache's size bound covers every kind of entry: OCI and Git artifacts,
inline and ConfigMap module files, and the schema cache's files; a module still loaded in
memory keeps its entry."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from pequod.crdgen.schema_cache import SchemaCache
from pequod.delivery.cache import ModuleCache
from pequod.delivery.reference import ModuleReference
from pequod.delivery.resolver import ModuleResolver
from pequod.module.embedded import load_embedded
from pequod.module.metadata import ModuleMetadata
from pequod.schema.extract import InputSchema

KIB = 1024


def _inline(size: int, tag: str) -> str:
    return f"package m\n// {tag}\n" + "// " + "x" * size + "\n"


def _schema_entry(cache: SchemaCache, digest: str) -> None:
    schema = InputSchema({"type": "object"}, {"type": "object"}, ())
    metadata = ModuleMetadata(
        name="m", version="1", kind="M", short_names=(), printer_columns=(), plural="ms"
    )
    cache.store(digest, Path("/nonexistent/cue"), schema, metadata)


def test_every_kind_of_entry_is_evicted_under_the_one_bound(tmp_path: Path) -> None:
    cache = ModuleCache(tmp_path, max_bytes=10 * KIB)
    resolver = ModuleResolver(cache=cache)
    schemas = SchemaCache(cache.schemas, after_store=cache.evict)
    resolver.materialize({"module.cue": _inline(3 * KIB, "configmap")}, "configmap:a/b")
    resolver.load(ModuleReference("inline", _inline(3 * KIB, "inline")))
    _schema_entry(schemas, "sha256:" + "0" * 64)
    gc.collect()  # nothing holds those modules any more
    names = [path.name for _, _, path in cache.entries()]
    assert len([n for n in names if n.startswith("content-")]) == 2
    assert len([n for n in names if n.endswith(".json")]) == 1

    # An artifact that alone nearly fills the bound pushes all of them out.
    cache.put("oci-sha256-1", lambda d: (d / "f").write_bytes(b"x" * (10 * KIB - 64)))
    assert [path.name for _, _, path in cache.entries()] == ["oci-sha256-1"]
    assert not list(cache.schemas.glob("*.json"))
    assert not [p for p in cache.objects.iterdir() if p.name.startswith("content-")]


def test_a_schema_entry_counts_and_is_evicted_by_its_last_use(tmp_path: Path) -> None:
    cache = ModuleCache(tmp_path, max_bytes=4 * KIB)
    cache.put("git-old", lambda d: (d / "f").write_bytes(b"x" * 3 * KIB))
    schemas = SchemaCache(cache.schemas, after_store=cache.evict)
    for number in range(40):  # each entry is some hundred bytes: together above the bound
        _schema_entry(schemas, f"sha256:{number:064d}")
    assert cache.get("git-old") is None
    assert sum(size for _, size, _ in cache.entries()) <= 4 * KIB


def test_a_module_loaded_in_memory_keeps_its_entry(tmp_path: Path) -> None:
    cache = ModuleCache(tmp_path, max_bytes=4 * KIB)
    resolver = ModuleResolver(cache=cache)
    held = resolver.materialize({"module.cue": _inline(3 * KIB, "held")}, "inline")
    resolver.materialize({"module.cue": _inline(3 * KIB, "dropped")}, "inline")
    gc.collect()
    cache.put("oci-sha256-2", lambda d: (d / "f").write_bytes(b"x" * 2 * KIB))
    assert held.directory.is_dir()  # above the bound rather than broken under a render
    assert [p.name for _, _, p in cache.entries()].count(held.directory.parent.name) == 1
    assert len([p for _, _, p in cache.entries() if p.name.startswith("content-")]) == 1

    del held
    gc.collect()
    cache.evict()
    assert sum(size for _, size, _ in cache.entries()) <= 4 * KIB


def test_embedded_and_directory_modules_need_no_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEQUOD_MODULE_CACHE", str(tmp_path / "cache"))
    resolver = ModuleResolver()
    embedded = resolver.load("embedded:webservice@1.1.0")
    assert embedded == load_embedded("embedded:webservice@1.1.0")
    assert resolver.load(str(embedded.directory)).digest == embedded.digest
    assert not (tmp_path / "cache").exists()
