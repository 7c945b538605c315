"""Breaking changes between two versions of a CRD's spec schema."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from pequod.crdgen.compatibility import SchemaChange, breaking_changes

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def spec(**properties: dict[str, Any]) -> dict[str, Any]:
    """A spec schema with the given properties."""
    return {"type": "object", "properties": properties}


def changes_of(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(c.path, c.kind, c.detail) for c in breaking_changes(old, new)]


def golden_spec_schema(module: str) -> dict[str, Any]:
    crd = yaml.safe_load((GOLDEN / module / "crd.golden.yaml").read_text())
    spec_schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
        "properties"
    ]["spec"]
    return spec_schema


def test_change_reads_as_path_and_detail() -> None:
    change = SchemaChange("spec.replicas", "TypeChanged", 'type changed from "integer" to "string"')
    assert str(change) == 'spec.replicas: type changed from "integer" to "string"'


def test_identical_schemas_have_no_change() -> None:
    schema = golden_spec_schema("webservice-v1.1.0")
    assert breaking_changes(schema, copy.deepcopy(schema)) == []


# Breaking changes, one kind at a time.


def test_removed_property() -> None:
    old = spec(image={"type": "string"}, port={"type": "integer"})
    new = spec(image={"type": "string"})
    assert changes_of(old, new) == [("spec.port", "FieldRemoved", "field removed")]


def test_removed_property_of_a_node_that_preserves_unknown_fields() -> None:
    old = {**spec(port={"type": "integer"}), "x-kubernetes-preserve-unknown-fields": True}
    new = {**spec(), "x-kubernetes-preserve-unknown-fields": True}
    assert changes_of(old, new) == [("spec.port", "FieldRemoved", "field removed")]


def test_type_changed() -> None:
    old = spec(port={"type": "string"})
    new = spec(port={"type": "integer"})
    assert changes_of(old, new) == [
        ("spec.port", "TypeChanged", 'type changed from "string" to "integer"')
    ]


def test_int_or_string_narrowed_to_one_type() -> None:
    old = spec(port={"x-kubernetes-int-or-string": True})
    new = spec(port={"type": "integer"})
    assert changes_of(old, new) == [
        ("spec.port", "TypeChanged", 'type changed from "integer" or "string" to "integer"')
    ]


def test_no_longer_nullable() -> None:
    old = spec(name={"type": "string", "nullable": True})
    new = spec(name={"type": "string"})
    assert changes_of(old, new) == [
        ("spec.name", "TypeChanged", 'type changed from "string" or null to "string"')
    ]


def test_free_form_value_given_a_type() -> None:
    old = spec(extra={"x-kubernetes-preserve-unknown-fields": True})
    new = spec(extra={"type": "string"})
    assert changes_of(old, new) == [
        ("spec.extra", "TypeChanged", 'type changed from any value to "string"')
    ]


def test_number_narrowed_to_integer() -> None:
    old = spec(ratio={"type": "number"})
    new = spec(ratio={"type": "integer"})
    assert changes_of(old, new) == [
        ("spec.ratio", "TypeChanged", 'type changed from "number" to "integer"')
    ]


def test_type_change_hides_the_old_structure_below_it() -> None:
    old = spec(ingress=spec(host={"type": "string"}))
    new = spec(ingress={"type": "string"})
    assert changes_of(old, new) == [
        ("spec.ingress", "TypeChanged", 'type changed from "object" to "string"')
    ]


def test_optional_property_made_required() -> None:
    old = spec(image={"type": "string"})
    new = {**spec(image={"type": "string"}), "required": ["image"]}
    assert changes_of(old, new) == [
        ("spec.image", "NewRequiredField", "became required and has no default")
    ]


def test_new_required_property_without_default() -> None:
    old = spec(image={"type": "string"})
    new = {**spec(image={"type": "string"}, tier={"type": "string"}), "required": ["tier"]}
    assert changes_of(old, new) == [
        ("spec.tier", "NewRequiredField", "new required field without a default")
    ]


def test_enum_values_removed() -> None:
    old = spec(role={"type": "string", "enum": ["web", "worker", "cron"]})
    new = spec(role={"type": "string", "enum": ["web", "cron"]})
    assert changes_of(old, new) == [("spec.role", "EnumNarrowed", 'values removed: "worker"')]


def test_enum_added() -> None:
    old = spec(role={"type": "string"})
    new = spec(role={"type": "string", "enum": ["web", "worker"]})
    assert changes_of(old, new) == [("spec.role", "EnumNarrowed", 'enum added: "web", "worker"')]


@pytest.mark.parametrize(
    ("old_bounds", "new_bounds", "detail"),
    [
        ({"minimum": 0}, {"minimum": 1}, "minimum raised from 0 to 1"),
        ({"maximum": 50}, {"maximum": 10}, "maximum lowered from 50 to 10"),
        ({}, {"maximum": 10}, "maximum added: 10"),
        ({"minimum": 1}, {"minimum": 1, "exclusiveMinimum": True}, "minimum made exclusive at 1"),
        (
            {"maximum": 10},
            {"maximum": 10, "exclusiveMaximum": True},
            "maximum made exclusive at 10",
        ),
        (
            {"minimum": 0, "exclusiveMinimum": True},
            {"minimum": 2},
            "minimum raised from 0 (exclusive) to 2",
        ),
    ],
)
def test_numeric_bound_tightened(
    old_bounds: dict[str, Any], new_bounds: dict[str, Any], detail: str
) -> None:
    old = spec(replicas={"type": "integer", **old_bounds})
    new = spec(replicas={"type": "integer", **new_bounds})
    assert changes_of(old, new) == [("spec.replicas", "BoundTightened", detail)]


@pytest.mark.parametrize(
    ("old_node", "new_node", "detail"),
    [
        ({"type": "string"}, {"type": "string", "minLength": 1}, "minLength added: 1"),
        (
            {"type": "string", "maxLength": 253},
            {"type": "string", "maxLength": 63},
            "maxLength lowered from 253 to 63",
        ),
        (
            {"type": "array", "items": {"type": "string"}, "minItems": 0},
            {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "minItems raised from 0 to 1",
        ),
        (
            {"type": "array", "items": {"type": "string"}},
            {"type": "array", "items": {"type": "string"}, "maxItems": 5},
            "maxItems added: 5",
        ),
    ],
)
def test_length_bound_tightened(
    old_node: dict[str, Any], new_node: dict[str, Any], detail: str
) -> None:
    assert changes_of(spec(value=old_node), spec(value=new_node)) == [
        ("spec.value", "BoundTightened", detail)
    ]


def test_pattern_added() -> None:
    old = spec(path={"type": "string"})
    new = spec(path={"type": "string", "pattern": "^/"})
    assert changes_of(old, new) == [("spec.path", "PatternChanged", 'pattern added: "^/"')]


def test_pattern_changed() -> None:
    old = spec(path={"type": "string", "pattern": "^/"})
    new = spec(path={"type": "string", "pattern": "^/api"})
    assert changes_of(old, new) == [
        ("spec.path", "PatternChanged", 'pattern changed from "^/" to "^/api"')
    ]


def test_unknown_fields_no_longer_preserved() -> None:
    old = spec(extra={"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    new = spec(extra={"type": "object"})
    assert changes_of(old, new) == [
        ("spec.extra", "MapOrListChanged", "unknown fields are no longer preserved")
    ]


def test_map_turned_into_object_with_properties() -> None:
    old = spec(env={"type": "object", "additionalProperties": {"type": "string"}})
    new = spec(env=spec(LOG_LEVEL={"type": "string"}))
    assert changes_of(old, new) == [
        ("spec.env", "MapOrListChanged", "map turned into an object with fixed properties")
    ]


def test_object_with_properties_turned_into_map() -> None:
    old = spec(env=spec(LOG_LEVEL={"type": "string"}))
    new = spec(env={"type": "object", "additionalProperties": {"type": "string"}})
    assert changes_of(old, new) == [
        ("spec.env", "MapOrListChanged", "object with fixed properties turned into a map")
    ]


def test_list_type_made_set() -> None:
    old = spec(tags={"type": "array", "items": {"type": "string"}})
    new = spec(tags={"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"})
    assert changes_of(old, new) == [
        ("spec.tags", "MapOrListChanged", 'list type changed from "atomic" to "set"')
    ]


def test_new_property_of_a_node_that_preserved_unknown_fields() -> None:
    old = {**spec(), "x-kubernetes-preserve-unknown-fields": True}
    new = {**spec(port={"type": "integer"}), "x-kubernetes-preserve-unknown-fields": True}
    assert changes_of(old, new) == [
        ("spec.port", "TypeChanged", 'type changed from any value to "integer"')
    ]


# Nested paths, arrays and maps.


def test_nested_property_paths() -> None:
    old = spec(ingress=spec(host={"type": "string", "maxLength": 253}, tls=spec()))
    new = spec(ingress=spec(host={"type": "string", "maxLength": 63}))
    assert changes_of(old, new) == [
        ("spec.ingress.host", "BoundTightened", "maxLength lowered from 253 to 63"),
        ("spec.ingress.tls", "FieldRemoved", "field removed"),
    ]


def test_array_items_are_compared_under_brackets() -> None:
    port = spec(name={"type": "string"}, number={"type": "integer", "minimum": 1})
    narrower_port = {
        **spec(number={"type": "integer", "minimum": 1024}),
        "required": ["number"],
    }
    old = spec(ports={"type": "array", "items": port})
    new = spec(ports={"type": "array", "items": narrower_port})
    assert changes_of(old, new) == [
        ("spec.ports[].name", "FieldRemoved", "field removed"),
        ("spec.ports[].number", "BoundTightened", "minimum raised from 1 to 1024"),
        ("spec.ports[].number", "NewRequiredField", "became required and has no default"),
    ]


def test_map_values_are_compared_under_braces() -> None:
    old = spec(env={"type": "object", "additionalProperties": {"type": "string"}})
    new = spec(env={"type": "object", "additionalProperties": {"type": "string", "maxLength": 64}})
    assert changes_of(old, new) == [("spec.env{}", "BoundTightened", "maxLength added: 64")]


def test_map_of_arrays_of_objects() -> None:
    def schema(item_type: str) -> dict[str, Any]:
        volume = spec(size={"type": item_type})
        volumes = {"type": "array", "items": volume}
        return spec(disks={"type": "object", "additionalProperties": volumes})

    assert changes_of(schema("string"), schema("integer")) == [
        ("spec.disks{}[].size", "TypeChanged", 'type changed from "string" to "integer"')
    ]


def test_changes_are_sorted_by_path() -> None:
    old = spec(
        b={"type": "string"},
        a=spec(z={"type": "string"}, y={"type": "integer"}),
        c={"type": "string"},
    )
    new = spec(a=spec(y={"type": "string"}), c={"type": "string", "pattern": "x"})
    assert [c.path for c in breaking_changes(old, new)] == [
        "spec.a.y",
        "spec.a.z",
        "spec.b",
        "spec.c",
    ]


def test_path_prefix_can_be_chosen() -> None:
    old = spec(host={"type": "string"})
    changes = breaking_changes(old, spec(), path="spec.ingress")
    assert [str(c) for c in changes] == ["spec.ingress.host: field removed"]


# Changes that existing instances survive.


def test_description_changed() -> None:
    old = {**spec(port={"type": "integer", "description": "Port."}), "description": "A."}
    new = {**spec(port={"type": "integer", "description": "The port."}), "description": "B."}
    assert breaking_changes(old, new) == []


def test_default_changed() -> None:
    old = spec(port={"type": "integer", "default": 8080})
    new = spec(port={"type": "integer", "default": 9090})
    assert breaking_changes(old, new) == []


def test_default_removed() -> None:
    old = spec(port={"type": "integer", "default": 8080})
    new = spec(port={"type": "integer"})
    assert breaking_changes(old, new) == []


def test_new_optional_property() -> None:
    old = spec(image={"type": "string"})
    new = spec(image={"type": "string"}, minAvailable={"type": "integer", "minimum": 1})
    assert breaking_changes(old, new) == []


def test_new_required_property_with_default() -> None:
    old = spec(image={"type": "string"})
    new = {
        **spec(image={"type": "string"}, port={"type": "integer", "default": 8080}),
        "required": ["port"],
    }
    assert breaking_changes(old, new) == []


def test_existing_property_made_required_with_default() -> None:
    old = spec(port={"type": "integer", "default": 8080})
    new = {**spec(port={"type": "integer", "default": 8080}), "required": ["port"]}
    assert breaking_changes(old, new) == []


def test_property_made_optional() -> None:
    old = {**spec(image={"type": "string"}), "required": ["image"]}
    new = spec(image={"type": "string"})
    assert breaking_changes(old, new) == []


def test_enum_widened() -> None:
    old = spec(role={"type": "string", "enum": ["web"]})
    new = spec(role={"type": "string", "enum": ["web", "worker"]})
    assert breaking_changes(old, new) == []


def test_enum_removed() -> None:
    old = spec(role={"type": "string", "enum": ["web"]})
    new = spec(role={"type": "string"})
    assert breaking_changes(old, new) == []


@pytest.mark.parametrize(
    ("old_bounds", "new_bounds"),
    [
        ({"minimum": 1, "maximum": 10}, {"minimum": 0, "maximum": 50}),
        ({"minimum": 1, "maximum": 10}, {}),
        ({"minimum": 1, "exclusiveMinimum": True}, {"minimum": 1}),
        ({"maximum": 10, "exclusiveMaximum": True}, {"maximum": 10}),
        ({"minimum": 0, "exclusiveMinimum": True}, {"minimum": 0, "exclusiveMinimum": True}),
    ],
)
def test_numeric_bounds_loosened(old_bounds: dict[str, Any], new_bounds: dict[str, Any]) -> None:
    old = spec(replicas={"type": "integer", **old_bounds})
    new = spec(replicas={"type": "integer", **new_bounds})
    assert breaking_changes(old, new) == []


def test_length_bounds_loosened() -> None:
    old = spec(
        name={"type": "string", "minLength": 3, "maxLength": 63},
        tags={"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 5},
    )
    new = spec(
        name={"type": "string", "minLength": 1},
        tags={"type": "array", "items": {"type": "string"}, "maxItems": 10},
    )
    assert breaking_changes(old, new) == []


def test_pattern_removed() -> None:
    old = spec(path={"type": "string", "pattern": "^/"})
    new = spec(path={"type": "string"})
    assert breaking_changes(old, new) == []


@pytest.mark.parametrize(
    ("old_node", "new_node"),
    [
        ({"type": "integer"}, {"type": "number"}),
        ({"type": "integer"}, {"x-kubernetes-int-or-string": True}),
        ({"type": "string"}, {"type": "string", "nullable": True}),
        ({"type": "string"}, {"x-kubernetes-preserve-unknown-fields": True}),
    ],
)
def test_type_widened(old_node: dict[str, Any], new_node: dict[str, Any]) -> None:
    assert breaking_changes(spec(value=old_node), spec(value=new_node)) == []


def test_unknown_fields_newly_preserved() -> None:
    old = spec(extra={"type": "object"})
    new = spec(extra={"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    assert breaking_changes(old, new) == []


def test_list_type_made_atomic() -> None:
    old = spec(tags={"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"})
    new = spec(tags={"type": "array", "items": {"type": "string"}})
    assert breaking_changes(old, new) == []


# The embedded modules.


def test_webservice_1_0_to_1_1_only_adds_an_optional_field() -> None:
    old = golden_spec_schema("webservice-v1.0.0")
    new = golden_spec_schema("webservice-v1.1.0")
    assert set(new["properties"]) - set(old["properties"]) == {"minAvailable"}
    assert "minAvailable" not in new.get("required", [])
    assert breaking_changes(old, new) == []


def test_webservice_1_1_to_1_0_removes_min_available() -> None:
    old = golden_spec_schema("webservice-v1.1.0")
    new = golden_spec_schema("webservice-v1.0.0")
    assert breaking_changes(old, new) == [
        SchemaChange("spec.minAvailable", "FieldRemoved", "field removed")
    ]
