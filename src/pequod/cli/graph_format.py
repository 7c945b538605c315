"""Draws a graph as Graphviz dot or Mermaid, edges from a dependency to its dependent."""

from __future__ import annotations

from pequod.graph.model import Graph


def _label(graph: Graph, node_id: str) -> str:
    obj = graph.node(node_id).object
    return f"{node_id}\\n{obj['kind']}/{obj['metadata']['name']}"


def to_dot(graph: Graph) -> str:
    lines = ["digraph pequod {", "  rankdir=LR;", "  node [shape=box];"]
    for node in graph.nodes:
        lines.append(f'  "{node.id}" [label="{_label(graph, node.id)}"];')
    for node in graph.nodes:
        for dependency in node.depends_on:
            lines.append(f'  "{dependency}" -> "{node.id}";')
    lines.append("}")
    return "\n".join(lines)


def to_mermaid(graph: Graph) -> str:
    lines = ["graph LR"]
    for node in graph.nodes:
        obj = node.object
        lines.append(f'  {node.id}["{node.id}<br/>{obj["kind"]}/{obj["metadata"]["name"]}"]')
    for node in graph.nodes:
        for dependency in node.depends_on:
            lines.append(f"  {dependency} --> {node.id}")
    return "\n".join(lines)
