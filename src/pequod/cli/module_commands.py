"""``pequod render | crd | vet | graph``: the offline view of what the cluster will get."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from pequod.api.ownership import crd_labels
from pequod.cli.graph_format import to_dot, to_mermaid
from pequod.cli.input_file import InputFileError, position_of, read_instance_document
from pequod.crdgen.crd import DEFAULT_GROUP, DEFAULT_VERSION, ApiDefinition
from pequod.crdgen.generate import generate_api
from pequod.cue.diagnostics import Diagnostic
from pequod.cue.runner import CueError, CueSettings
from pequod.delivery.resolver import ModuleResolver
from pequod.graph.size import DEFAULT_MAX_GRAPH_BYTES
from pequod.graph.validate import NamespacePolicy
from pequod.module.source import ModuleError, ModuleSource
from pequod.policy.evaluate import PolicyError
from pequod.render.instance import Instance
from pequod.render.observe import ObserveError
from pequod.render.render import Renderer, RenderError, RenderResult, check_observe
from pequod.schema.extract import StatusSchemaError
from pequod.schema.normalize import SchemaError
from pequod.toolchain.locate import ToolNotFoundError

EXIT_INVALID = 1


def register(commands: Any) -> None:
    render = commands.add_parser("render", help="render an instance with a module, offline")
    _module_argument(render)
    _instance_arguments(render, required=True)
    render.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml")
    render.set_defaults(run=_render)

    crd = commands.add_parser("crd", help="print the CRD a Transform would generate")
    _module_argument(crd)
    crd.add_argument("--name", required=True, help="the Transform's name, e.g. webservice")
    crd.add_argument("--group", default=DEFAULT_GROUP)
    crd.add_argument("--version", default=DEFAULT_VERSION, dest="api_version")
    crd.add_argument("--kind", help="default: #Metadata.kind, else CamelCase of --name")
    crd.add_argument("--short-name", action="append", default=[], dest="short_names")
    crd.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml")
    crd.set_defaults(run=_crd)

    vet = commands.add_parser("vet", help="check a module, and with --input an instance too")
    _module_argument(vet)
    _instance_arguments(vet, required=False)
    vet.set_defaults(run=_vet)

    graph = commands.add_parser("graph", help="draw the rendered dependency graph")
    _module_argument(graph)
    _instance_arguments(graph, required=True)
    graph.add_argument("-o", "--output", choices=["dot", "mermaid"], default="mermaid")
    graph.set_defaults(run=_graph)


def _module_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("module", help="a module directory, or embedded:NAME[@VERSION]")
    parser.add_argument("--cue-timeout", type=float, default=10.0, help="seconds (default 10)")


def _instance_arguments(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--input", "-i", type=Path, required=required, help="instance YAML/JSON")
    parser.add_argument("--name", help="instance name (default: the file's metadata.name)")
    parser.add_argument("--namespace", "-n", help="instance namespace (default: the file's)")
    parser.add_argument(
        "--policy",
        action="append",
        default=[],
        dest="policies",
        help="a policy module to check (repeatable), e.g. embedded:policy/defaults",
    )
    parser.add_argument(
        "--allow-namespace",
        action="append",
        default=[],
        dest="allowed_namespaces",
        help="another namespace rendered objects may go to ('*': any)",
    )
    parser.add_argument("--allow-cluster-scoped", action="store_true")
    parser.add_argument(
        "--observed",
        type=Path,
        help="YAML of observed values, {nodes: {ID: OBJECT}, references: {NAME: OBJECT}}: "
        "render as the cluster would with that state (a declared value not in it is pending)",
    )
    parser.add_argument(
        "--max-graph-bytes",
        type=int,
        default=DEFAULT_MAX_GRAPH_BYTES,
        help="refuse a graph larger than this as a ResourceGraph, as the operator's flag "
        f"of the same name does (default {DEFAULT_MAX_GRAPH_BYTES})",
    )


def _settings(arguments: argparse.Namespace) -> CueSettings:
    return CueSettings(timeout_seconds=arguments.cue_timeout)


def _fail(lines: Sequence[str]) -> int:
    for line in lines:
        print(line, file=sys.stderr)
    return EXIT_INVALID


def _describe(diagnostic: Diagnostic, input_path: Path | None, module: ModuleSource | None) -> str:
    where = ""
    if input_path is not None and diagnostic.path.startswith(("spec", "metadata")):
        position = position_of(input_path, diagnostic.path)
        where = f"{position}: " if position else f"{input_path}: "
    elif diagnostic.positions:
        where = f"{_module_file(diagnostic.positions[0].file, module)}:"
        where += f"{diagnostic.positions[0].line}:{diagnostic.positions[0].column}: "
    path = f"{diagnostic.path}: " if diagnostic.path else ""
    text = f"{where}{path}{diagnostic.message}"
    module_positions = [str(p) for p in diagnostic.positions]
    if where.startswith(str(input_path)) and module_positions and module is not None:
        text += f" (constraint at {_module_file(diagnostic.positions[0].file, module)}:"
        text += f"{diagnostic.positions[0].line}:{diagnostic.positions[0].column})"
    return text


def _module_file(name: str, module: ModuleSource | None) -> str:
    if module is None or name.startswith("/"):
        return name
    path = module.directory / name
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


def _run(arguments: argparse.Namespace, work: Any) -> int:
    """Runs the coroutine ``work`` and turns every expected failure into exit 1 with messages."""
    input_path: Path | None = getattr(arguments, "input", None)
    module: ModuleSource | None = None
    try:
        module = ModuleResolver().load(arguments.module)
        result: int = asyncio.run(work(module))
        return result
    except (
        ModuleError,
        InputFileError,
        SchemaError,
        PolicyError,
        ToolNotFoundError,
        ObserveError,
    ) as error:
        return _fail([f"error: {error}"])
    except RenderError as error:
        return _fail(
            [f"error: {error.summary}"]
            + [f"  {_describe(d, input_path, module)}" for d in error.diagnostics]
        )
    except CueError as error:
        return _fail(
            [f"error: {arguments.module}: {error.summary}"]
            + [f"  {_describe(d, None, module)}" for d in error.diagnostics]
        )


def _instance(arguments: argparse.Namespace) -> Instance:
    document = read_instance_document(arguments.input)
    return Instance.from_object(document, name=arguments.name, namespace=arguments.namespace)


async def _render_with(arguments: argparse.Namespace, module: ModuleSource) -> RenderResult:
    resolver = ModuleResolver()
    policies = [resolver.load(reference) for reference in arguments.policies]
    instance = _instance(arguments)
    namespaces = NamespacePolicy(
        instance.namespace,
        tuple(arguments.allowed_namespaces),
        arguments.allow_cluster_scoped,
    )
    renderer = Renderer(_settings(arguments), max_graph_bytes=arguments.max_graph_bytes)
    nodes, references = _observed_file(getattr(arguments, "observed", None))
    return await renderer.render_with_state(
        module,
        instance,
        node_values=nodes,
        referenced=references,
        policies=policies,
        namespaces=namespaces,
    )


def _observed_file(path: Path | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``nodes`` and ``references`` of an observed-values file (none without one)."""
    if path is None:
        return {}, {}
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except OSError as error:
        raise InputFileError(f"{path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise InputFileError(f"{where}: not valid YAML: {error}") from None
    if not isinstance(document, dict) or not set(document) <= {"nodes", "references"}:
        raise InputFileError(f"{path}: expected a mapping with nodes and references")
    nodes, references = document.get("nodes") or {}, document.get("references") or {}
    if not isinstance(nodes, dict) or not isinstance(references, dict):
        raise InputFileError(f"{path}: nodes and references map names to objects")
    return nodes, references


def _report_violations(result: RenderResult) -> int:
    for violation in result.violations:
        print(f"{violation}", file=sys.stderr)
    return EXIT_INVALID if result.blocked else 0


def _dump(document: Any, output: str) -> None:
    if output == "json":
        print(json.dumps(document, indent=2))
    else:
        print(yaml.safe_dump(document, sort_keys=False), end="")


def _render(arguments: argparse.Namespace) -> int:
    async def work(module: ModuleSource) -> int:
        result = await _render_with(arguments, module)
        _dump(result.to_dict(), arguments.output)
        return _report_violations(result)

    return _run(arguments, work)


def _crd(arguments: argparse.Namespace) -> int:
    async def work(module: ModuleSource) -> int:
        requested = ApiDefinition(
            name=arguments.name,
            group=arguments.group,
            version=arguments.api_version,
            kind=arguments.kind,
            short_names=tuple(arguments.short_names),
        )
        generated = await generate_api(
            module, requested, _settings(arguments), labels=crd_labels(requested.name)
        )
        for note in generated.schema.notes:
            print(f"note: {note}", file=sys.stderr)
        _dump(generated.crd, arguments.output)
        return 0

    return _run(arguments, work)


def _vet(arguments: argparse.Namespace) -> int:
    async def work(module: ModuleSource) -> int:
        try:
            generated = await generate_api(module, ApiDefinition(name="vet"), _settings(arguments))
        except StatusSchemaError as error:
            where = _status_position(module, error.field)
            return _fail([f"error: {where + ': ' if where else ''}{error}"])
        kind = generated.definition.resolved_kind
        await check_observe(module, _settings(arguments))
        if arguments.input is None:
            print(f"{module.reference}: ok ({kind}, digest {module.digest})")
            return 0
        result = await _render_with(arguments, module)
        status = _report_violations(result)
        if status == 0:
            print(
                f"{module.reference}: ok ({kind}); {arguments.input}: "
                f"{len(result.graph.nodes)} nodes, {len(result.violations)} warnings"
            )
        return status

    return _run(arguments, work)


_STATUS_DEFINITION = re.compile(r"^\s*#Status\s*:\s*\{?")


def _status_position(module: ModuleSource, field: str | None) -> str | None:
    """``FILE:LINE`` of ``#Status`` in the module (of its ``field``, when one is named), or
    None when it is not found.

    cue's schema encodings carry no positions, so the source is searched: the first line that
    opens ``#Status``, and from it on the first that declares ``field``."""
    declaration = re.compile(rf"^\s*{re.escape(field or '')}[?!]?\s*:")
    for path in sorted(module.directory.glob("*.cue")):
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for start, line in enumerate(lines):
            opening = _STATUS_DEFINITION.match(line)
            if opening is None:
                continue
            found = start
            if field is not None:
                # The opening line may declare the field itself: `#Status: phase?: string`.
                rest = [line[opening.end() :], *lines[start + 1 :]]
                found += next((i for i, text in enumerate(rest) if declaration.match(text)), 0)
            return f"{_module_file(path.name, module)}:{found + 1}"
    return None


def _graph(arguments: argparse.Namespace) -> int:
    async def work(module: ModuleSource) -> int:
        result = await _render_with(arguments, module)
        print(to_dot(result.graph) if arguments.output == "dot" else to_mermaid(result.graph))
        return _report_violations(result)

    return _run(arguments, work)
