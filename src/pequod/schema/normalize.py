"""Turns cue's JSON Schema encoding of ``#Input`` into one canonical, ``$ref``-free tree.

The canonical tree uses JSON Schema 2020-12 keywords with a ``type`` on every node (or
``x-kubernetes-preserve-unknown-fields`` / ``x-kubernetes-int-or-string`` where no single type
fits); ``additionalProperties: False`` marks closed structs.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

_NUMERIC_LOWER = ("minimum", "exclusiveMinimum")
_NUMERIC_UPPER = ("maximum", "exclusiveMaximum")
_ANNOTATIONS = ("description", "default", "title", "$schema", "$comment", "examples")


class SchemaError(ValueError):
    """``#Input`` uses a construct that has no schema form (e.g. a recursive definition)."""


def normalize(node: Schema, definitions: dict[str, Schema]) -> Schema:
    return _normalize(node, definitions, ())


def _normalize(
    node: Schema | bool, definitions: dict[str, Schema], stack: tuple[str, ...]
) -> Schema:
    if node is True:
        return {"x-kubernetes-preserve-unknown-fields": True}
    if node is False:
        return {"not": {}}
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in stack:
            raise SchemaError(f"#{name} refers to itself; recursive types have no CRD schema")
        if name not in definitions:
            raise SchemaError(f"unknown reference {node['$ref']}")
        target = _normalize(definitions[name], definitions, (*stack, name))
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return _intersect([target, _normalize(extra, definitions, stack)]) if extra else target
    result: Schema = {k: v for k, v in node.items() if k in _ANNOTATIONS and k != "$schema"}
    parts: list[Schema] = [_normalize(p, definitions, stack) for p in node.get("allOf", [])]
    own = {k: v for k, v in node.items() if k not in ("allOf", "$defs", "$schema")}
    if "anyOf" in own or "oneOf" in own:
        branches = [
            _normalize(b, definitions, stack) for b in own.pop("anyOf", own.pop("oneOf", []))
        ]
        parts.append(_union(branches))
    parts.append(_normalize_own(own, definitions, stack))
    merged = _intersect(parts)
    merged.update({k: v for k, v in result.items() if k not in merged})
    return merged


def _normalize_own(node: Schema, definitions: dict[str, Schema], stack: tuple[str, ...]) -> Schema:
    result: Schema = {}
    for key, value in node.items():
        if key == "properties":
            result[key] = {n: _normalize(s, definitions, stack) for n, s in value.items()}
        elif key == "additionalProperties" and isinstance(value, dict):
            result[key] = _normalize(value, definitions, stack)
        elif key == "patternProperties":
            # No pattern-keyed maps in a structural schema: keep the values' schema only.
            values = [_normalize(s, definitions, stack) for s in value.values()]
            result["additionalProperties"] = _union(values)
        elif key == "items":
            result[key] = _normalize(value, definitions, stack)
        elif key == "prefixItems":
            result["items"] = _union([_normalize(s, definitions, stack) for s in value])
        elif key == "const":
            result.update(_const_schema(value))
        elif key == "enum":
            result["enum"] = list(value)
            result.setdefault("type", _common_type(value))
        elif key == "not":
            continue  # `!=` and friends: enforced by CUE at render time
        else:
            result[key] = value
    if (
        result.get("type") == "object"
        and "additionalProperties" not in result
        and "properties" not in result
    ):
        result["x-kubernetes-preserve-unknown-fields"] = True
    if result.get("additionalProperties") is True:
        del result["additionalProperties"]
        result["x-kubernetes-preserve-unknown-fields"] = True
    return result


def _const_schema(value: Any) -> Schema:
    if isinstance(value, dict):
        # cue encodes an open struct `{...}` as `const: {}`: it accepts any object.
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return {"enum": [value], "type": _common_type([value])}


def _json_type(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return None


def _common_type(values: list[Any]) -> str | None:
    types = {_json_type(v) for v in values}
    if types == {"integer", "number"}:
        return "number"
    return types.pop() if len(types) == 1 else None


def _intersect(parts: list[Schema]) -> Schema:
    """The schema of a value that satisfies every part (CUE's `&`)."""
    result: Schema = {}
    for part in parts:
        for key, value in part.items():
            if key not in result:
                result[key] = value
            elif key == "type":
                result[key] = _intersect_types(result[key], value)
            elif key in _NUMERIC_LOWER or key in ("minLength", "minItems"):
                result[key] = max(result[key], value)
            elif key in _NUMERIC_UPPER or key in ("maxLength", "maxItems"):
                result[key] = min(result[key], value)
            elif key == "required":
                result[key] = sorted(set(result[key]) | set(value), key=_order(result[key], value))
            elif key == "properties":
                merged = dict(result[key])
                for name, schema in value.items():
                    merged[name] = _intersect([merged[name], schema]) if name in merged else schema
                result[key] = merged
            elif key == "enum":
                result[key] = [v for v in result[key] if v in value]
            elif key in ("items", "additionalProperties") and isinstance(value, dict):
                current = result[key]
                result[key] = _intersect([current, value]) if isinstance(current, dict) else value
            else:
                result[key] = value
    if result.get("x-kubernetes-preserve-unknown-fields") and "properties" in result:
        # a struct with declared fields and `...`
        result.pop("additionalProperties", None)
    return result


def _order(first: list[str], second: list[str]) -> Any:
    sequence = list(dict.fromkeys([*first, *second]))
    return sequence.index


def _intersect_types(first: str, second: str) -> str:
    if first == second:
        return first
    if {first, second} == {"number", "integer"}:
        return "integer"
    raise SchemaError(f"a value cannot be both {first} and {second}")


def _union(branches: list[Schema]) -> Schema:
    """The schema of a value that satisfies one of the branches (CUE's `|`), as close as a
    structural schema allows."""
    non_null = [b for b in branches if b.get("type") != "null"]
    nullable = len(non_null) < len(branches)
    result: Schema
    if all("enum" in b for b in non_null) and non_null:
        values = [v for b in non_null for v in b["enum"]]
        result = {"enum": list(dict.fromkeys(values))}
        if (common := _common_type(values)) is not None:
            result["type"] = common
    elif len(non_null) == 1:
        result = dict(non_null[0])
    else:
        types = {b.get("type") for b in non_null}
        if types == {"integer", "string"}:
            result = {"x-kubernetes-int-or-string": True}
        elif types == {"integer", "number"}:
            result = {"type": "number"}
        elif types == {"object"}:
            result = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        else:
            result = {"x-kubernetes-preserve-unknown-fields": True}
    if nullable:
        result["nullable"] = True
    return result
