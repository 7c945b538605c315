"""What a render reads of the world (a module's ``#Observe``) and the ``observed`` document it
is given: the declared paths of the instance's own live objects and of the objects it
references, with a *pending* string in place of each value not known yet.

The same functions serve the instance controller (values from the graph's status and the
reference cache) and ``pequod render --observed`` (values from a file), so what a platform
engineer renders offline with some state is what the cluster renders with it."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

PENDING_PATTERN = re.compile(r"\(pending: ((?:nodes|references)\.[A-Za-z0-9_.\-]+)\)")
"""A value a render was given before it was known; group 1 is its path in ``observed``."""

_FIELD = re.compile(r"^[A-Za-z0-9_\-]+$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SECRET_READABLE = (
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "metadata.labels",
    "metadata.creationTimestamp",
    "type",
)
"""What a render may read of a Secret: its identity, labels and type. Never its data, nor its
annotations (``kubectl apply`` keeps the whole Secret, data included, in one): a graph
holding them would hold the secret in clear. A module passes a Secret's name on, in a
``secretKeyRef``."""


class ObserveError(Exception):
    """A module's ``#Observe`` is malformed, or reads what it may not (Secret data)."""


def pending(path: str) -> str:
    """The value passed for ``path`` (``nodes.ID.a.b`` or ``references.NAME.a.b``) while it is
    not known."""
    return f"(pending: {path})"


@dataclass(frozen=True)
class Reference:
    """An object an instance reads and does not own; ``name`` is the module's name for it."""

    name: str
    api_version: str
    kind: str
    object_name: str
    namespace: str
    paths: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.kind} {self.namespace}/{self.object_name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "apiVersion": self.api_version,
            "kind": self.kind,
            "objectName": self.object_name,
            "namespace": self.namespace,
            "paths": list(self.paths),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Reference:
        return cls(
            data["name"],
            data["apiVersion"],
            data["kind"],
            data["objectName"],
            data["namespace"],
            tuple(data.get("paths", ())),
        )


@dataclass(frozen=True)
class Declaration:
    """What one render reads: paths of its own nodes' live objects, and references."""

    nodes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    references: tuple[Reference, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not self.nodes and not self.references

    def node_paths(self) -> dict[str, tuple[str, ...]]:
        return dict(self.nodes)

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {}
        if self.nodes:
            result["nodes"] = {node_id: list(paths) for node_id, paths in self.nodes}
        if self.references:
            result["references"] = [r.to_dict() for r in self.references]
        return result

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Declaration:
        data = data or {}
        return cls(
            tuple((k, tuple(v)) for k, v in sorted((data.get("nodes") or {}).items())),
            tuple(Reference.from_dict(r) for r in data.get("references") or ()),
        )


NO_DECLARATION = Declaration()


def parse_declaration(raw: Any, namespace: str) -> Declaration:
    """``#Observe`` as cue exported it (with ``input`` unified in), checked: node ids and
    reference names are DNS labels, paths are dotted field names, nothing reads Secret data.
    A reference without a namespace is in ``namespace`` (the instance's)."""
    if not isinstance(raw, dict):
        raise ObserveError("#Observe must be a struct")
    nodes_raw = raw.get("nodes") or {}
    references_raw = raw.get("references") or {}
    if not isinstance(nodes_raw, dict) or not isinstance(references_raw, dict):
        raise ObserveError("#Observe.nodes and #Observe.references must be structs")
    nodes: list[tuple[str, tuple[str, ...]]] = []
    for node_id, paths in sorted(nodes_raw.items()):
        where = f"#Observe.nodes.{node_id}"
        if not _LABEL.match(node_id):
            raise ObserveError(f"{where}: a node id is a DNS label")
        nodes.append((node_id, _paths(paths, where)))
    references: list[Reference] = []
    for name, ref in sorted(references_raw.items()):
        where = f"#Observe.references.{name}"
        if not _LABEL.match(name):
            raise ObserveError(f"{where}: a reference's name is a DNS label")
        if not isinstance(ref, dict):
            raise ObserveError(f"{where}: must be a struct")
        for required in ("apiVersion", "kind", "name"):
            if not isinstance(ref.get(required), str) or not ref[required]:
                raise ObserveError(f"{where}.{required}: a non-empty string is required")
        ref_namespace = ref.get("namespace", namespace)
        if not isinstance(ref_namespace, str) or not _LABEL.match(ref_namespace):
            raise ObserveError(f"{where}.namespace: a namespace name is required")
        references.append(
            Reference(
                name,
                ref["apiVersion"],
                ref["kind"],
                ref["name"],
                ref_namespace,
                _paths(ref.get("paths", []), f"{where}.paths"),
            )
        )
        refuse_secret_data(ref["apiVersion"], ref["kind"], references[-1].paths, where)
    return Declaration(tuple(nodes), tuple(references))


def refuse_secret_data(api_version: str, kind: str, paths: tuple[str, ...], where: str) -> None:
    """Raises :class:`ObserveError` when ``paths`` of a Secret reach more than
    :data:`SECRET_READABLE`."""
    if api_version != "v1" or kind != "Secret":
        return
    for path in paths:
        if not any(
            path == allowed or path.startswith(allowed + ".") for allowed in SECRET_READABLE
        ):
            raise ObserveError(
                f"{where}: {path!r} reads a Secret's data or annotations, which a render never "
                "sees (a graph would hold them in clear); a render may read a Secret's "
                f"{', '.join(SECRET_READABLE)}, and passes its name on in a secretKeyRef"
            )


def _paths(raw: Any, where: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        raise ObserveError(f"{where}: a non-empty list of paths is required")
    for path in raw:
        if not isinstance(path, str) or not all(_FIELD.match(p) for p in path.split(".")):
            raise ObserveError(
                f"{where}: {path!r} is not a path (dotted field names, e.g. spec.clusterIP)"
            )
    return tuple(sorted(set(raw)))


def read_paths(obj: Mapping[str, Any] | None, paths: tuple[str, ...]) -> dict[str, Any]:
    """The fields at ``paths`` of ``obj``, as a partial copy of it; a path that is not there
    is left out (``managedFields`` is never copied)."""
    result: dict[str, Any] = {}
    for path in paths:
        value = _lookup(obj, path)
        if value is not _MISSING and not path.startswith("metadata.managedFields"):
            _place(result, path, _without_managed_fields(copy.deepcopy(value), path))
    return result


def with_pending(
    values: Mapping[str, Any] | None, paths: tuple[str, ...], prefix: str
) -> dict[str, Any]:
    """:func:`read_paths` of ``values``, with :func:`pending` at each path that is missing."""
    result = read_paths(values, paths)
    for path in paths:
        if _lookup(result, path) is _MISSING:
            _place(result, path, pending(f"{prefix}.{path}"))
    return result


def observed_document(
    declaration: Declaration,
    node_values: Mapping[str, Any],
    referenced: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """What ``#Render.observed`` is unified with: each declared path of each node (from
    ``node_values``, by node id) and of each reference (``referenced``, by reference name),
    pending where not known."""
    return {
        "nodes": {
            node_id: with_pending(node_values.get(node_id), paths, f"nodes.{node_id}")
            for node_id, paths in declaration.nodes
        },
        "references": {
            ref.name: with_pending(referenced.get(ref.name), ref.paths, f"references.{ref.name}")
            for ref in declaration.references
        },
    }


def known_in(node_values: Mapping[str, Any], path: str) -> bool:
    """Whether ``node_values`` (values by node id) hold ``path`` (``nodes.ID.FIELD...``)."""
    kind, _, rest = path.partition(".")
    node_id, _, field_path = rest.partition(".")
    return kind == "nodes" and _lookup(node_values.get(node_id), field_path) is not _MISSING


def pending_paths(value: Any) -> list[str]:
    """Every pending value's path found in ``value`` (whole strings and interpolations)."""
    return sorted({m.group(1) for text in _strings(value) for m in PENDING_PATTERN.finditer(text)})


def without_pending(value: Any) -> Any:
    """``value`` without the fields (and list items) that hold a pending value."""
    if isinstance(value, dict):
        return {
            k: without_pending(v)
            for k, v in value.items()
            if not (isinstance(v, str) and PENDING_PATTERN.search(v))
        }
    if isinstance(value, list):
        return [
            without_pending(v)
            for v in value
            if not (isinstance(v, str) and PENDING_PATTERN.search(v))
        ]
    return value


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


class _Missing:
    pass


_MISSING = _Missing()


def _lookup(obj: Mapping[str, Any] | None, path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _place(target: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[last] = value


def _without_managed_fields(value: Any, path: str) -> Any:
    # A read of the whole metadata gets it without managedFields (bulky, and nothing a
    # render should depend on); metadata.managedFields itself is never read.
    if path == "metadata" and isinstance(value, dict):
        value.pop("managedFields", None)
    return value
