"""What cue says about a module's #Input is kept on disk by module digest: a second operator
process (a restart) generates the same CRD without running cue; a damaged entry is ignored."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pequod.crdgen.crd import ApiDefinition
from pequod.crdgen.generate import generate_api
from pequod.crdgen.schema_cache import SchemaCache
from pequod.metrics import CUE_EVAL_DURATION
from pequod.module.embedded import load_embedded


def cue_runs() -> float:
    return sum(
        s.value
        for s in next(iter(CUE_EVAL_DURATION.collect())).samples
        if s.name.endswith("_count")
    )


def test_a_cached_schema_generates_the_same_crd_without_cue(tmp_path: Path) -> None:
    module = load_embedded("webservice@1.1.0")
    requested = ApiDefinition(name="webservice", kind="WebService")
    fresh = asyncio.run(generate_api(module, requested))

    cache = SchemaCache(tmp_path / "schemas")
    first = asyncio.run(generate_api(module, requested, cache=cache))
    before = cue_runs()
    again = asyncio.run(generate_api(module, requested, cache=SchemaCache(tmp_path / "schemas")))
    assert cue_runs() == before
    assert again.crd == first.crd == fresh.crd
    assert again.schema == fresh.schema
    assert again.metadata == fresh.metadata

    # A damaged entry costs a cue run, and is rewritten.
    (entry,) = (tmp_path / "schemas").glob("*.json")
    entry.write_text("{not json")
    repaired = asyncio.run(generate_api(module, requested, cache=cache))
    assert cue_runs() > before
    assert repaired.crd == fresh.crd
    assert entry.read_text().startswith("{")
