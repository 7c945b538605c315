"""Finds the breaking changes between two versions of a CRD's ``spec`` schema.

A change is breaking when an instance that is valid under the old structural schema may be
invalid under the new one, or may lose data to pruning. The operator refuses such a change to
the schema of existing instances unless it is explicitly allowed.

Changes that cannot invalidate an existing instance are not reported: descriptions and
defaults changing, a new optional property, a property becoming optional, an enum widened, a
bound loosened or a pattern removed.

Only the ``spec`` is compared. The ``status`` (Pequod's fields and the module's ``#Status``) is
Pequod's to write on every render and requires nothing, so a changed ``#Status`` is applied as
an update of the CRD (its content hash changes), never refused as a breaking change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pequod.schema.normalize import Schema

_PRESERVE_UNKNOWN = "x-kubernetes-preserve-unknown-fields"
_INT_OR_STRING = "x-kubernetes-int-or-string"
_LIST_TYPE = "x-kubernetes-list-type"
_LIST_MAP_KEYS = "x-kubernetes-list-map-keys"

_ANY_VALUE: Schema = {_PRESERVE_UNKNOWN: True}
"""The schema of a value the old schema did not constrain (an unknown field it preserved)."""

_LOWER_BOUNDS = (
    ("minimum", "exclusiveMinimum"),
    ("minLength", None),
    ("minItems", None),
    ("minProperties", None),
)
_UPPER_BOUNDS = (
    ("maximum", "exclusiveMaximum"),
    ("maxLength", None),
    ("maxItems", None),
    ("maxProperties", None),
)


@dataclass(frozen=True)
class SchemaChange:
    """One breaking change, at ``path`` in the instance.

    ``path`` names properties with dots (``spec.ingress.host``), the items of an array with
    ``[]`` (``spec.ports[]``) and the values of a map with ``{}`` (``spec.env{}``). ``kind``
    is one of ``FieldRemoved``, ``TypeChanged``, ``NewRequiredField``, ``EnumNarrowed``,
    ``BoundTightened``, ``PatternChanged`` and ``MapOrListChanged``; ``detail`` says what
    changed in a sentence.
    """

    path: str
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"


def breaking_changes(old: Schema, new: Schema, *, path: str = "spec") -> list[SchemaChange]:
    """The changes from ``old`` to ``new`` (structural schemas of the value at ``path``) that
    may make an existing instance invalid or lose part of it, sorted by path."""
    changes: list[SchemaChange] = []
    _compare(old, new, path, changes)
    return sorted(changes, key=lambda change: (change.path, change.kind, change.detail))


def _compare(old: Schema, new: Schema, path: str, changes: list[SchemaChange]) -> None:
    if not _compare_types(old, new, path, changes):
        return
    _compare_enums(old, new, path, changes)
    _compare_bounds(old, new, path, changes)
    _compare_patterns(old, new, path, changes)
    _compare_lists(old, new, path, changes)
    _compare_objects(old, new, path, changes)


def _compare_types(old: Schema, new: Schema, path: str, changes: list[SchemaChange]) -> bool:
    """Reports a type that no longer accepts every old value; False when the non-null types
    differ, so the rest of the node is not worth comparing."""
    old_types, new_types = _accepted_types(old), _accepted_types(new)
    same_kind = _types_covered(old_types, new_types)
    null_dropped = bool(old.get("nullable")) and not new.get("nullable")
    if not same_kind or null_dropped:
        detail = f"type changed from {_describe_type(old)} to {_describe_type(new)}"
        changes.append(SchemaChange(path, "TypeChanged", detail))
    return same_kind


def _accepted_types(node: Schema) -> frozenset[str] | None:
    """The JSON types a node accepts besides null; None when it accepts any value."""
    if node.get(_INT_OR_STRING):
        return frozenset({"integer", "string"})
    if "type" not in node:
        return None
    return frozenset({node["type"]})


def _types_covered(old: frozenset[str] | None, new: frozenset[str] | None) -> bool:
    if new is None:
        return True
    if old is None:
        return False
    return all(t in new or (t == "integer" and "number" in new) for t in old)


def _describe_type(node: Schema) -> str:
    types = _accepted_types(node)
    text = "any value" if types is None else " or ".join(json.dumps(t) for t in sorted(types))
    return f"{text} or null" if node.get("nullable") else text


def _compare_enums(old: Schema, new: Schema, path: str, changes: list[SchemaChange]) -> None:
    if "enum" not in new:
        return
    allowed = {_enum_key(value) for value in new["enum"]}
    if "enum" not in old:
        detail = f"enum added: {_list_values(new['enum'])}"
        changes.append(SchemaChange(path, "EnumNarrowed", detail))
        return
    removed = [value for value in old["enum"] if _enum_key(value) not in allowed]
    if removed:
        detail = f"values removed: {_list_values(removed)}"
        changes.append(SchemaChange(path, "EnumNarrowed", detail))


def _enum_key(value: Any) -> str:
    """A comparable form of an enum value: JSON, with 1.0 and 1 the same number."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return json.dumps(value, sort_keys=True)


def _list_values(values: list[Any]) -> str:
    return ", ".join(json.dumps(value, sort_keys=True) for value in values)


def _compare_bounds(old: Schema, new: Schema, path: str, changes: list[SchemaChange]) -> None:
    for keyword, exclusive in _LOWER_BOUNDS:
        detail = _tightened(old, new, keyword, exclusive, raised=True)
        if detail:
            changes.append(SchemaChange(path, "BoundTightened", detail))
    for keyword, exclusive in _UPPER_BOUNDS:
        detail = _tightened(old, new, keyword, exclusive, raised=False)
        if detail:
            changes.append(SchemaChange(path, "BoundTightened", detail))


def _tightened(
    old: Schema, new: Schema, keyword: str, exclusive: str | None, *, raised: bool
) -> str | None:
    """What tightened one bound (``raised`` for a lower bound), or None if it did not.

    ``exclusive`` names the OpenAPI v3 boolean that makes a numeric bound exclusive."""
    if keyword not in new:
        return None
    new_value = new[keyword]
    new_exclusive = bool(exclusive and new.get(exclusive))
    if keyword not in old:
        return f"{keyword} added: {_bound_text(new_value, new_exclusive)}"
    old_value = old[keyword]
    old_exclusive = bool(exclusive and old.get(exclusive))
    moved_in = new_value > old_value if raised else new_value < old_value
    if moved_in:
        direction = "raised" if raised else "lowered"
        return (
            f"{keyword} {direction} from {_bound_text(old_value, old_exclusive)} "
            f"to {_bound_text(new_value, new_exclusive)}"
        )
    if new_value == old_value and new_exclusive and not old_exclusive:
        return f"{keyword} made exclusive at {new_value}"
    return None


def _bound_text(value: Any, exclusive: bool) -> str:
    return f"{value} (exclusive)" if exclusive else f"{value}"


def _compare_patterns(old: Schema, new: Schema, path: str, changes: list[SchemaChange]) -> None:
    if "pattern" not in new or old.get("pattern") == new["pattern"]:
        return
    if "pattern" in old:
        detail = (
            f"pattern changed from {json.dumps(old['pattern'])} to {json.dumps(new['pattern'])}"
        )
    else:
        detail = f"pattern added: {json.dumps(new['pattern'])}"
    changes.append(SchemaChange(path, "PatternChanged", detail))


def _compare_lists(old: Schema, new: Schema, path: str, changes: list[SchemaChange]) -> None:
    old_list_type = old.get(_LIST_TYPE, "atomic")
    new_list_type = new.get(_LIST_TYPE, "atomic")
    if new_list_type not in (old_list_type, "atomic"):
        detail = (
            f"list type changed from {json.dumps(old_list_type)} to {json.dumps(new_list_type)}"
        )
        changes.append(SchemaChange(path, "MapOrListChanged", detail))
    elif new_list_type == "map" and old.get(_LIST_MAP_KEYS) != new.get(_LIST_MAP_KEYS):
        detail = (
            f"list map keys changed from {json.dumps(old.get(_LIST_MAP_KEYS))} "
            f"to {json.dumps(new.get(_LIST_MAP_KEYS))}"
        )
        changes.append(SchemaChange(path, "MapOrListChanged", detail))
    if isinstance(old.get("items"), dict) and isinstance(new.get("items"), dict):
        _compare(old["items"], new["items"], f"{path}[]", changes)


def _compare_objects(old: Schema, new: Schema, path: str, changes: list[SchemaChange]) -> None:
    if old.get(_PRESERVE_UNKNOWN) and not new.get(_PRESERVE_UNKNOWN):
        changes.append(
            SchemaChange(path, "MapOrListChanged", "unknown fields are no longer preserved")
        )
    old_values, new_values = _map_values(old), _map_values(new)
    if old_values is not None and new_values is not None:
        _compare(old_values, new_values, f"{path}{{}}", changes)
    elif old_values is not None:
        if new.get("properties") or not new.get(_PRESERVE_UNKNOWN):
            detail = "map turned into an object with fixed properties"
            changes.append(SchemaChange(path, "MapOrListChanged", detail))
    elif new_values is not None:
        if old.get("properties"):
            detail = "object with fixed properties turned into a map"
            changes.append(SchemaChange(path, "MapOrListChanged", detail))
    else:
        _compare_properties(old, new, path, changes)


def _map_values(node: Schema) -> Schema | None:
    """The schema of a map's values, or None when the node is not a map."""
    values = node.get("additionalProperties")
    if isinstance(values, dict):
        return values
    return _ANY_VALUE if values is True else None


def _compare_properties(old: Schema, new: Schema, path: str, changes: list[SchemaChange]) -> None:
    old_properties: dict[str, Schema] = old.get("properties", {})
    new_properties: dict[str, Schema] = new.get("properties", {})
    for name in sorted(old_properties.keys() - new_properties.keys()):
        changes.append(SchemaChange(f"{path}.{name}", "FieldRemoved", "field removed"))
    for name in sorted(new_properties):
        if name in old_properties:
            _compare(old_properties[name], new_properties[name], f"{path}.{name}", changes)
        elif old.get(_PRESERVE_UNKNOWN):
            _compare(_ANY_VALUE, new_properties[name], f"{path}.{name}", changes)
    newly_required = set(new.get("required", [])) - set(old.get("required", []))
    for name in sorted(newly_required):
        if "default" in new_properties.get(name, {}):
            continue
        if name in old_properties:
            detail = "became required and has no default"
        else:
            detail = "new required field without a default"
        changes.append(SchemaChange(f"{path}.{name}", "NewRequiredField", detail))
