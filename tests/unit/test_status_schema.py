"""A module's ``#Status`` becomes the schema of its instances' status, next to Pequod's own
fields, the way ``#Input`` becomes the schema of their spec; ``pequod vet`` says what is wrong
with a ``#Status`` that cannot."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from pequod.cli.main import main
from pequod.crdgen.compatibility import breaking_changes
from pequod.crdgen.crd import ApiDefinition, build_crd, status_schema
from pequod.crdgen.generate import generate_api
from pequod.crdgen.schema_cache import SchemaCache
from pequod.metrics import CUE_EVAL_DURATION
from pequod.module.source import ModuleSource, load_directory
from pequod.schema.extract import (
    PEQUOD_STATUS_FIELDS,
    InputSchema,
    StatusSchemaError,
    extract_input_schema,
    extract_status_schema,
)
from pequod.schema.normalize import Schema

INPUT = """package status

#Input: {
\t// Image to run.
\timage: string
}
"""

STATUS = """
// What a service publishes about itself.
#Status: {
\t// URL the service answers on.
\turl?: string
\t// Number of pods that are ready.
\treadyReplicas: int & >=0 | *0
\t// The address of each port, by port name.
\tports?: [string]: {
\t\t// Port number.
\t\tport: int & >=1 & <=65535
\t\thost:  string
\t}
\ttier: "gold" | *"silver"
}
"""


def module_with(tmp_path: Path, status: str | None) -> ModuleSource:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "input.cue").write_text(INPUT)
    if status is not None:
        (tmp_path / "status.cue").write_text(f"package status\n{status}")
    return load_directory(tmp_path)


def extract(module: ModuleSource) -> InputSchema:
    return asyncio.run(extract_input_schema(module))


def crd_status(crd: dict[str, Any]) -> Schema:
    status: Schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    return status


def crd_spec(crd: dict[str, Any]) -> Schema:
    spec: Schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec


def cue_runs() -> float:
    return sum(
        s.value
        for s in next(iter(CUE_EVAL_DURATION.collect())).samples
        if s.name.endswith("_count")
    )


# Extraction.


def test_status_keeps_doc_comments_types_and_bounds(tmp_path: Path) -> None:
    status = extract(module_with(tmp_path, STATUS)).status
    assert status is not None
    assert status["type"] == "object"
    assert status["description"] == "What a service publishes about itself."
    properties = status["properties"]
    assert properties["url"] == {"type": "string", "description": "URL the service answers on."}
    assert properties["readyReplicas"]["type"] == "integer"
    assert properties["readyReplicas"]["minimum"] == 0
    assert properties["readyReplicas"]["description"] == "Number of pods that are ready."
    port = properties["ports"]["additionalProperties"]["properties"]["port"]
    assert (port["type"], port["minimum"], port["maximum"]) == ("integer", 1, 65535)
    assert port["description"] == "Port number."
    assert properties["tier"]["enum"] == ["gold", "silver"]


def test_status_requires_nothing_and_defaults_nothing(tmp_path: Path) -> None:
    """Pequod writes its own fields before any render and leaves out a pending module field:
    the API server must neither refuse that write nor invent a value."""
    status = extract(module_with(tmp_path, STATUS)).status
    assert status is not None
    text = json.dumps(status)
    assert '"required"' not in text
    assert '"default"' not in text
    assert "additionalProperties" not in status
    assert "x-kubernetes-preserve-unknown-fields" not in status


def test_an_open_status_publishes_only_its_declared_fields(tmp_path: Path) -> None:
    status = extract(module_with(tmp_path, "#Status: {url?: string, ...}\n")).status
    assert status == {"type": "object", "properties": {"url": {"type": "string"}}}


def test_a_module_without_status_has_none(tmp_path: Path) -> None:
    module = module_with(tmp_path, None)
    schema = extract(module)
    assert schema.status is None
    assert schema.structural["properties"]["image"]["type"] == "string"
    assert asyncio.run(extract_status_schema(module)) is None


def test_extract_status_schema_alone_matches(tmp_path: Path) -> None:
    module = module_with(tmp_path, STATUS)
    assert asyncio.run(extract_status_schema(module)) == extract(module).status


@pytest.mark.parametrize("field", PEQUOD_STATUS_FIELDS)
def test_a_field_pequod_writes_is_refused_by_name(tmp_path: Path, field: str) -> None:
    module = module_with(tmp_path, f"#Status: {{\n\turl?: string\n\t{field}?: string\n}}\n")
    with pytest.raises(StatusSchemaError, match=f"may not declare '{field}'") as refused:
        extract(module)
    assert refused.value.field == field


@pytest.mark.parametrize(
    "status",
    ["#Status: string\n", "#Status: [string]: string\n"],
    ids=["scalar", "map"],
)
def test_a_status_that_is_not_a_struct_is_refused(tmp_path: Path, status: str) -> None:
    with pytest.raises(StatusSchemaError, match="#Status must be a struct") as refused:
        extract(module_with(tmp_path, status))
    assert refused.value.field is None


def test_reserved_fields_are_the_ones_pequod_declares() -> None:
    assert set(PEQUOD_STATUS_FIELDS) == set(status_schema()["properties"])


# The CRD.


def test_crd_status_declares_the_module_fields_next_to_pequods(tmp_path: Path) -> None:
    module = module_with(tmp_path, STATUS)
    generated = asyncio.run(generate_api(module, ApiDefinition(name="service")))
    status = crd_status(generated.crd)
    assert status["description"] == "What a service publishes about itself."
    assert status["properties"]["url"]["description"] == "URL the service answers on."
    assert set(status["properties"]) == {
        *PEQUOD_STATUS_FIELDS,
        "url",
        "readyReplicas",
        "ports",
        "tier",
    }
    # As without a #Status: what is written is pruned to what is declared.
    assert "x-kubernetes-preserve-unknown-fields" not in status
    assert status["properties"]["phase"] == status_schema()["properties"]["phase"]


def test_pequods_fields_win_a_name_both_declare() -> None:
    module_status = {
        "type": "object",
        "properties": {"phase": {"type": "integer"}, "url": {"type": "string"}},
    }
    merged = status_schema(module_status)
    assert merged["properties"]["phase"] == status_schema()["properties"]["phase"]
    assert merged["properties"]["url"] == {"type": "string"}


def test_crd_without_status_is_as_before(tmp_path: Path) -> None:
    generated = asyncio.run(generate_api(module_with(tmp_path, None), ApiDefinition(name="svc")))
    assert crd_status(generated.crd) == status_schema()


def test_a_changed_status_changes_the_crd_but_breaks_no_spec(tmp_path: Path) -> None:
    """The Transform controller compares the spec schemas for breaking changes and applies a
    CRD whose content changed: a new #Status is an update, never a refusal."""
    definition = ApiDefinition(name="service")
    before = extract(module_with(tmp_path / "old", STATUS))
    after = extract(module_with(tmp_path / "new", "#Status: {host?: string}\n"))
    old_crd = build_crd(definition, before.structural, module_status=before.status)
    new_crd = build_crd(definition, after.structural, module_status=after.status)
    assert crd_status(old_crd) != crd_status(new_crd)
    assert breaking_changes(crd_spec(old_crd), crd_spec(new_crd)) == []


def test_the_schema_cache_keeps_the_status(tmp_path: Path) -> None:
    module = module_with(tmp_path / "module", STATUS)
    requested = ApiDefinition(name="service")
    first = asyncio.run(generate_api(module, requested, cache=SchemaCache(tmp_path / "cache")))
    before = cue_runs()
    again = asyncio.run(generate_api(module, requested, cache=SchemaCache(tmp_path / "cache")))
    assert cue_runs() == before
    assert again.schema.status == first.schema.status is not None
    assert again.crd == first.crd


def test_a_cache_entry_without_status_is_read_afresh(tmp_path: Path) -> None:
    module = module_with(tmp_path / "module", STATUS)
    requested = ApiDefinition(name="service")
    cache = SchemaCache(tmp_path / "cache")
    fresh = asyncio.run(generate_api(module, requested, cache=cache))
    (entry_path,) = (tmp_path / "cache").glob("*.json")
    entry = json.loads(entry_path.read_text())
    # The layout before #Status was read: no version, no status.
    del entry["version"], entry["schema"]["status"]
    entry_path.write_text(json.dumps(entry))
    before = cue_runs()
    again = asyncio.run(generate_api(module, requested, cache=cache))
    assert cue_runs() > before
    assert again.crd == fresh.crd
    assert json.loads(entry_path.read_text())["schema"]["status"] == fresh.schema.status


# pequod vet.


def test_vet_names_the_line_of_a_reserved_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module_with(tmp_path, "#Status: {\n\turl?: string\n\tphase?: string\n}\n")
    assert main(["vet", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    # status.cue: line 1 is the package clause, #Status opens on 2, phase is on 4.
    assert "status.cue:4: " in error
    assert "#Status may not declare 'phase'" in error


def test_vet_names_the_line_of_a_status_that_is_not_a_struct(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module_with(tmp_path, "\n#Status: string\n")
    assert main(["vet", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert "status.cue:3: " in error
    assert "#Status must be a struct" in error


def test_vet_reports_cue_errors_in_status_with_their_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module_with(tmp_path, "#Status: {\n\turl?: strng\n}\n")
    assert main(["vet", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert 'status.cue:3:8: #Status.url: reference "strng" not found' in error


def test_vet_names_the_field_of_a_status_without_a_schema(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module_with(tmp_path, "#Status: {\n\turl?: string\n\tport?: string & int\n}\n")
    assert main(["vet", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert "status.cue:4: #Status.port: a value cannot be both integer and string" in error


def test_vet_accepts_a_good_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module_with(tmp_path, STATUS)
    assert main(["vet", str(tmp_path)]) == 0
    assert ": ok (" in capsys.readouterr().out
