"""The size of a graph as a ResourceGraph is measured from its nodes, and a render over the
limit is refused with a message that names the size, the limit and the largest nodes, whether
the render came from cue or from the render cache."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pequod.graph.model import Graph, Node
from pequod.graph.size import DOCUMENT_BYTES, STATUS_BYTES_PER_NODE, measure
from pequod.module.source import ModuleSource
from pequod.render.instance import Instance
from pequod.render.render import GraphTooLargeError, Renderer


def config_map(name: str, size: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"blob": "x" * size},
    }


def test_measure_counts_nodes_status_and_overhead() -> None:
    graph = Graph((Node("small", config_map("small", 10)), Node("big", config_map("big", 5000))))
    size = measure(graph)
    nodes = sum(len(json.dumps(n.to_dict(), separators=(",", ":"))) for n in graph.nodes)
    assert size.node_bytes == nodes + len("[]")
    assert size.status_bytes == 2 * STATUS_BYTES_PER_NODE
    assert size.total == DOCUMENT_BYTES + size.node_bytes + size.status_bytes
    assert [node_id for node_id, _ in size.largest] == ["big", "small"]


def test_multibyte_characters_count_as_bytes() -> None:
    ascii_size = measure(Graph((Node("a", config_map("a", 0) | {"data": {"k": "aaaa"}}),)))
    wide_size = measure(Graph((Node("a", config_map("a", 0) | {"data": {"k": "ääää"}}),)))
    assert wide_size.node_bytes == ascii_size.node_bytes + 4


def test_the_message_names_size_limit_and_largest_nodes() -> None:
    nodes = tuple(Node(f"cm-{i}", config_map(f"cm-{i}", 1000 * i)) for i in range(1, 8))
    message = measure(Graph(nodes)).describe(4096)
    assert "over the limit of 4.0 KiB" in message
    assert "7 nodes" in message
    # The five largest, largest first; the two smallest are not listed.
    assert message.index("cm-7 (") < message.index("cm-3 (")
    assert "cm-2 (" not in message
    assert "cm-1 (" not in message
    assert "--max-graph-bytes" in message


class _Evaluator:
    """Stands in for cue: returns a fixed evaluation and counts the calls."""

    def __init__(self, output: dict[str, Any]) -> None:
        self.output = output
        self.calls = 0

    async def evaluate(
        self, module: ModuleSource, instance: Instance, observed: Any = None, **_: Any
    ) -> dict[str, Any]:
        self.calls += 1
        return {"output": self.output, "input": {"spec": {}}}


async def test_a_render_over_the_limit_is_refused_cached_or_not(tmp_path: Path) -> None:
    # A package cue loads (to ask which parts of the contract it defines: none); the
    # evaluation itself is the fake's.
    (tmp_path / "module.cue").write_text("package fake\n")
    module = ModuleSource(tmp_path, "fake-module", "sha256:" + "0" * 64)
    instance = Instance("one", "default", {})
    output = {
        "nodes": [{"id": f"cm{i}", "object": config_map(f"cm{i}", 2000)} for i in range(4)],
    }
    renderer = Renderer(max_graph_bytes=8192)
    evaluator = _Evaluator(output)
    renderer.evaluator = evaluator  # type: ignore[assignment]
    for _ in range(2):
        with pytest.raises(GraphTooLargeError) as refused:
            await renderer.render(module, instance)
        assert refused.value.limit == 8192
        assert refused.value.size.node_count == 4
        assert "fake-module: the ResourceGraph would take about" in str(refused.value)
    assert evaluator.calls == 1  # the second refusal came from the cache

    roomy = Renderer(max_graph_bytes=1024 * 1024)
    roomy.evaluator = _Evaluator(output)  # type: ignore[assignment]
    result = await roomy.render(module, instance)
    assert result.size.node_count == 4
