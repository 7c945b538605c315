"""An input is accepted by CUE if and only if it is accepted by the schema Pequod generates.

For each module of the corpus (one per group of supported constructs): hand-picked edge cases,
then property-based inputs drawn near the schema's bounds, with wrong types, missing required
fields and unknown fields.
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pequod.module.source import load_directory
from pequod.schema.extract import InputSchema, extract_input_schema
from tests.cue_harness import SCHEMA_CORPUS, cue_accepts_input

CORPUS = sorted(p.name for p in SCHEMA_CORPUS.iterdir() if p.is_dir())


@functools.cache
def schema_of(name: str) -> InputSchema:
    return asyncio.run(extract_input_schema(load_directory(SCHEMA_CORPUS / name)))


def schema_accepts(name: str, value: Any) -> bool:
    return jsonschema.Draft202012Validator(schema_of(name).json_schema).is_valid(value)


def assert_agree(name: str, value: Any) -> None:
    by_cue = cue_accepts_input(SCHEMA_CORPUS / name, value)
    by_schema = schema_accepts(name, value)
    assert by_cue == by_schema, (
        f"{name}: CUE {'accepts' if by_cue else 'rejects'} but the schema "
        f"{'accepts' if by_schema else 'rejects'} {value!r}"
    )


EDGE_CASES: dict[str, list[Any]] = {
    "scalars": [
        {"count": 1},
        {"count": 1, "port": 0},
        {"count": 1, "port": 65535},
        {"count": 1, "port": 65536},
        {"count": 1, "replicas": 0},
        {"count": 1, "replicas": 9},
        {"count": 1, "replicas": 10},
        {"count": 1, "ratio": 1.4999},
        {"count": 1, "ratio": 1.5},
        {"count": 1, "ratio": 0},
        {"count": 1, "enabled": "yes"},
        {"count": "1"},
        {},
        {"count": 1, "unknown": True},
    ],
    "strings": [
        {"name": "web"},
        {"name": "Web"},
        {"name": "web-"},
        {"name": "a" * 20},
        {"name": "a" * 21},
        {"name": "web", "tier": "api"},
        {"name": "web", "tier": "db"},
        {"name": "web", "code": "a"},
        {"name": "web", "code": "abcd"},
        {"name": "web", "code": "abcde"},
        {"name": "web", "level": 2},
        {"name": "web", "level": 4},
        {"name": "web", "level": "2"},
    ],
    "structs": [
        {"deep": {"a": {}}},
        {"deep": {"a": {"b": -1}}},
        {"deep": {"a": {}, "z": 1}},
        {"deep": {"a": {}}, "resources": {"cpu": "1"}},
        {"deep": {"a": {}}, "resources": {"gpu": "1"}},
        {"deep": {"a": {}}, "ingress": {}},
        {"deep": {"a": {}}, "ingress": {"host": "a.b"}},
        {"deep": {"a": {}}, "ingress": {"host": "A.B"}},
        {"deep": {"a": {}}, "extra": {"anything": [1, {"x": None}]}},
        {"deep": {"a": {}}, "extra": "text"},
        {},
    ],
    "lists": [
        {"hosts": []},
        {"hosts": ["a"], "ports": []},
        {"hosts": ["a"], "ports": [1, 2, 3]},
        {"hosts": ["a"], "ports": [1, 2, 3, 4]},
        {"hosts": ["a"], "ports": [0]},
        {"hosts": [1]},
        {"hosts": [], "rules": [{"path": "/"}, {"path": "/a", "weight": 100}]},
        {"hosts": [], "rules": [{"weight": 1}]},
        {"hosts": [], "rules": [{"path": "/", "extra": 1}]},
        {"hosts": [], "tags": ["a", "b"]},
        {"hosts": [], "tags": ["a", "a"]},
    ],
    "maps": [
        {},
        {"env": {"A": "1", "B": "2"}},
        {"env": {"A": 1}},
        {"limits": {"cpu": 0}},
        {"limits": {"cpu": -1}},
        {"routes": {"a": {"target": "x"}}},
        {"routes": {"a": {"target": "x", "weight": "1"}}},
        {"routes": {"a": {"weight": 1}}},
        {"routes": {"a": {"target": "x", "other": 1}}},
    ],
    "references": [
        {"main": {"number": 80}},
        {"main": {"number": 0}},
        {"main": {"number": 80, "protocol": "SCTP"}},
        {"main": {"number": 80}, "extra": [{"number": 1, "protocol": "UDP"}]},
        {"main": {"number": 80}, "extra": [{"protocol": "UDP"}]},
        {"main": {"number": 80}, "small": 255},
        {"main": {"number": 80}, "small": 256},
        {"main": {"number": 80}, "small": -1},
        {"main": {"number": 80}, "mid": 2147483647},
        {"main": {"number": 80}, "mid": 2147483648},
    ],
}


@pytest.mark.parametrize(
    ("name", "value"),
    [(name, value) for name, values in EDGE_CASES.items() for value in values],
    ids=lambda item: item if isinstance(item, str) else None,
)
def test_edge_cases_agree(name: str, value: Any) -> None:
    assert_agree(name, value)


def test_corpus_covers_every_module() -> None:
    assert set(EDGE_CASES) == set(CORPUS)


_WRONG_TYPE = st.one_of(st.integers(-3, 3), st.text(max_size=3), st.booleans(), st.none())


def values_for(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values near what ``schema`` accepts: in and just out of bounds, and of other types."""
    kind = schema.get("type")
    options: list[st.SearchStrategy[Any]] = [_WRONG_TYPE]
    if "enum" in schema:
        options.append(st.sampled_from([v for v in schema["enum"] if v is not None]))
    if kind == "integer":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -10))
        high = schema.get("maximum", schema.get("exclusiveMaximum", 10))
        options += [
            st.integers(int(low) - 2, int(low) + 2),
            st.integers(int(high) - 2, int(high) + 2),
        ]
    elif kind == "number":
        low = schema.get("minimum", schema.get("exclusiveMinimum", -10))
        high = schema.get("maximum", schema.get("exclusiveMaximum", 10))
        options.append(st.floats(low - 1, high + 1, allow_nan=False).filter(lambda f: f != int(f)))
        options.append(st.sampled_from([low, high]))
    elif kind == "string":
        if "pattern" in schema:
            options.append(st.from_regex(schema["pattern"], fullmatch=True))
        top = schema.get("maxLength", 8) + 2
        options.append(st.text(alphabet="ab-Z.1", max_size=top))
    elif kind == "boolean":
        options.append(st.booleans())
    elif kind == "array":
        items = values_for(schema.get("items", {}))
        options.append(st.lists(items, max_size=schema.get("maxItems", 3) + 1))
    elif kind == "object":
        options.append(objects_for(schema))
    return st.one_of(*options)


def objects_for(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties = schema.get("properties", {})
    if not properties:
        extra = schema.get("additionalProperties")
        values = values_for(extra) if isinstance(extra, dict) else _WRONG_TYPE
        return st.dictionaries(st.sampled_from(["a", "b", "x-y"]), values, max_size=3)
    required = set(schema.get("required", []))
    base = st.fixed_dictionaries(
        {name: values_for(s) for name, s in properties.items() if name in required},
        optional={name: values_for(s) for name, s in properties.items() if name not in required},
    )
    # Sometimes drop a required field or add an unknown one.
    return st.one_of(
        base,
        base.map(lambda d: {k: v for k, v in list(d.items())[1:]}),
        base.map(lambda d: {**d, "unknownField": 1}),
    )


@pytest.mark.parametrize("name", CORPUS)
def test_generated_inputs_agree(name: str) -> None:
    canonical = schema_of(name).json_schema

    @settings(
        max_examples=25,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(objects_for(canonical))
    def agree(value: dict[str, Any]) -> None:
        assert_agree(name, value)

    agree()


def test_corpus_directory_exists() -> None:
    assert Path(SCHEMA_CORPUS).is_dir()
