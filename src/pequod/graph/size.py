"""How large a rendered graph is once written as a ResourceGraph, measured before it is written.

The API server stores a ResourceGraph in etcd, whose default request limit (1.5 MiB,
``--max-request-bytes``) is below the API server's own (3 MiB): a graph between the two fails
with an etcd error, one above with 413. Either way the write fails for as long as the render
stays the same, so the size is checked against a limit below etcd's before any write, and an
instance over it gets a condition that says what is large.

The measure is the nodes and violations as JSON, plus what the graph's status will hold for
each node (its phase and inventory entry) and a fixed allowance for metadata and managedFields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pequod.graph.model import Graph

DEFAULT_MAX_GRAPH_BYTES = 1024 * 1024
"""1 MiB: a third below etcd's default request limit, for managedFields and status messages."""

STATUS_BYTES_PER_NODE = 400
"""A node's entry in ``status.nodes`` and in ``status.inventory``, with room for a message."""

DOCUMENT_BYTES = 8 * 1024
"""The ResourceGraph's metadata (labels, owner reference, managedFields) and spec.metadata."""

LARGEST_SHOWN = 5


@dataclass(frozen=True)
class GraphSize:
    total: int
    """Estimated bytes of the stored ResourceGraph."""
    node_bytes: int
    """Bytes of the nodes and violations as written in the graph's spec."""
    status_bytes: int
    node_count: int
    largest: tuple[tuple[str, int], ...]
    """The largest nodes, (id, bytes), largest first."""

    def describe(self, limit: int) -> str:
        """Why a graph of this size is refused, for a status condition or the CLI."""
        largest = ", ".join(f"{node_id} ({_bytes(size)})" for node_id, size in self.largest)
        return (
            f"the ResourceGraph would take about {_bytes(self.total)} "
            f"({self.node_count} nodes: {_bytes(self.node_bytes)} of objects, an estimated "
            f"{_bytes(self.status_bytes)} of status and {_bytes(DOCUMENT_BYTES)} of metadata), "
            f"over the limit of {_bytes(limit)}; "
            f"largest nodes: {largest or 'none'}. Render fewer or smaller objects (split the "
            "instance), or raise the operator's --max-graph-bytes (it must stay below etcd's "
            "--max-request-bytes)"
        )


def measure(graph: Graph) -> GraphSize:
    sizes = [(node.id, _json_bytes(node.to_dict())) for node in graph.nodes]
    node_bytes = sum(size for _, size in sizes) + _json_bytes(
        [v.to_dict() for v in graph.violations]
    )
    status_bytes = STATUS_BYTES_PER_NODE * len(sizes)
    largest = tuple(sorted(sizes, key=lambda entry: (-entry[1], entry[0]))[:LARGEST_SHOWN])
    return GraphSize(
        total=DOCUMENT_BYTES + node_bytes + status_bytes,
        node_bytes=node_bytes,
        status_bytes=status_bytes,
        node_count=len(sizes),
        largest=largest,
    )


def _json_bytes(value: Any) -> int:
    # Compact JSON, as the API server stores custom resources; UTF-8 bytes, not characters.
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _bytes(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):.1f} MiB"
    if count >= 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count} B"
