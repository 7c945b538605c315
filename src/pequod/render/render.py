"""instance + module (+ policies) → a checked graph with its violations and render hash."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pequod.cue.runner import CueError, CueSettings, run_cue
from pequod.graph.model import SEVERITY_ERROR, Graph, Node, Violation
from pequod.graph.size import DEFAULT_MAX_GRAPH_BYTES, GraphSize, measure
from pequod.graph.validate import GraphError, NamespacePolicy, build_graph
from pequod.metrics import RENDER_CACHE_HITS, RENDER_CACHE_MISSES
from pequod.module.source import ModuleSource
from pequod.policy.evaluate import evaluate_policy
from pequod.render.cache import RenderCache
from pequod.render.evaluate import DEFAULT_MAX_BATCH, OBSERVE, RenderEvaluator
from pequod.render.evaluate import RenderError as RenderError
from pequod.render.instance import Instance, canonical_json, render_hash
from pequod.render.observe import (
    NO_DECLARATION,
    Declaration,
    ObserveError,
    observed_document,
    parse_declaration,
    pending_paths,
    refuse_secret_data,
    without_pending,
)


@dataclass(frozen=True)
class RenderResult:
    spec: dict[str, Any]
    """The instance's spec with the module's defaults filled in."""
    graph: Graph
    violations: tuple[Violation, ...]
    """The module's own violations, then every policy's."""
    render_hash: str
    module_digest: str
    size: GraphSize
    """What the graph takes as a ResourceGraph (see :mod:`pequod.graph.size`)."""
    status: dict[str, Any] = field(default_factory=dict)
    """``#Render.status``: what the instance publishes, without the fields still pending."""

    @property
    def blocked(self) -> bool:
        """True when an Error violation forbids applying the graph."""
        return any(v.severity == SEVERITY_ERROR for v in self.violations)

    def to_dict(self) -> dict[str, Any]:
        return {
            "renderHash": self.render_hash,
            "moduleDigest": self.module_digest,
            "spec": self.spec,
            "nodes": [node.to_dict() for node in self.graph.nodes],
            "violations": [v.to_dict() for v in self.violations],
            **({"status": self.status} if self.status else {}),
        }


class GraphTooLargeError(RenderError):
    """The render is valid but its ResourceGraph would exceed the size limit. Permanent until
    the instance, the module or the policies change."""

    def __init__(self, module: ModuleSource, size: GraphSize, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"{module.reference}: {size.describe(limit)}", [])


class Renderer:
    """Renders with a cache keyed by render hash: the same module, policies and input are
    rendered by ``cue`` once; renders of one module that arrive together share a ``cue``
    process (see :mod:`pequod.render.evaluate`). A graph larger than ``max_graph_bytes`` as a
    ResourceGraph is refused (:class:`GraphTooLargeError`), cached or not."""

    def __init__(
        self,
        settings: CueSettings | None = None,
        cache_entries: int = 256,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_graph_bytes: int = DEFAULT_MAX_GRAPH_BYTES,
    ) -> None:
        self.settings = settings
        self.max_graph_bytes = max_graph_bytes
        self.cache: RenderCache[RenderResult] = RenderCache(cache_entries)
        self.declarations: RenderCache[Declaration] = RenderCache(cache_entries)
        self.evaluator = RenderEvaluator(settings, max_batch=max_batch)
        # Per module digest: which parts of the contract it defines (asked once, shared by
        # the renders that ask at the same time).
        self._contracts: dict[str, asyncio.Future[ModuleContract]] = {}

    @staticmethod
    def hash(
        module: ModuleSource,
        instance: Instance,
        policies: Sequence[ModuleSource] = (),
        observed: dict[str, Any] | None = None,
    ) -> str:
        """The render hash of ``instance`` with ``module``, ``policies`` and the ``observed``
        values it reads: what names a render (see :func:`pequod.render.instance.render_hash`).
        Without ``observed`` it is also the key of the instance's :meth:`declaration`."""
        return render_hash(module.digest, instance, tuple(p.digest for p in policies), observed)

    async def declaration(self, module: ModuleSource, instance: Instance) -> Declaration:
        """What the render of ``instance`` reads (its ``#Observe``, checked), cached by module
        and input; empty for a module without ``#Observe``, at no ``cue`` run after the
        module's first. Raises :class:`RenderError` or :class:`ObserveError`."""
        if not (await self.contract(module)).observes:
            return NO_DECLARATION
        key = self.hash(module, instance)
        found = self.declarations.get(key)
        if found is not None:
            return found
        evaluated = await self.evaluator.evaluate(module, instance, purpose=OBSERVE)
        declaration = parse_declaration(evaluated["observe"], instance.namespace)
        self.declarations.put(key, declaration)
        return declaration

    async def render_with_state(
        self,
        module: ModuleSource,
        instance: Instance,
        *,
        node_values: dict[str, Any],
        referenced: dict[str, Any],
        policies: Sequence[ModuleSource] = (),
        namespaces: NamespacePolicy | None = None,
    ) -> RenderResult:
        """The render of ``instance`` with the given live state (each node's object by id,
        each referenced object by reference name; what is not given is pending), as the
        operator renders it: its declaration, then the observed values it reads. What
        ``pequod render --observed`` runs."""
        declaration = await self.declaration(module, instance)
        observed = (
            None if declaration.empty else observed_document(declaration, node_values, referenced)
        )
        return await self.render(
            module, instance, policies=policies, namespaces=namespaces, observed=observed
        )

    async def contract(self, module: ModuleSource) -> ModuleContract:
        """Whether the module defines ``#Observe`` and ``#Status`` (two ``cue`` runs, once
        per module digest)."""
        asked = self._contracts.get(module.digest)
        if asked is None:
            asked = self._contracts[module.digest] = asyncio.ensure_future(
                module_contract(module, self.settings)
            )
        try:
            return await asyncio.shield(asked)
        except BaseException:
            if asked.done():
                self._contracts.pop(module.digest, None)  # asked again next time
            raise

    async def render(
        self,
        module: ModuleSource,
        instance: Instance,
        *,
        policies: Sequence[ModuleSource] = (),
        namespaces: NamespacePolicy | None = None,
        render_hash: str | None = None,
        observed: dict[str, Any] | None = None,
    ) -> RenderResult:
        """The render of ``instance`` given the ``observed`` values it reads
        (:func:`pequod.render.observe.observed_document`); ``render_hash``, when the caller
        has it already, is :meth:`hash` of the same arguments (not computed twice)."""
        namespaces = namespaces or NamespacePolicy(instance.namespace)
        hash_value = render_hash or self.hash(module, instance, policies, observed)
        cache_key = hash_value + "/" + canonical_json(namespaces.__dict__).decode()
        result = self.cache.get(cache_key)
        if result is not None:
            RENDER_CACHE_HITS.inc()
        else:
            RENDER_CACHE_MISSES.inc()
            result = await self._render(
                module, instance, policies, namespaces, hash_value, observed
            )
            self.cache.put(cache_key, result)
        if result.size.total > self.max_graph_bytes:
            raise GraphTooLargeError(module, result.size, self.max_graph_bytes)
        return result

    async def _render(
        self,
        module: ModuleSource,
        instance: Instance,
        policies: Sequence[ModuleSource],
        namespaces: NamespacePolicy,
        hash_value: str,
        observed: dict[str, Any] | None,
    ) -> RenderResult:
        contract = await self.contract(module)
        evaluated = await self.evaluator.evaluate(
            module, instance, observed, live_state=contract.live_state
        )
        try:
            graph = build_graph(evaluated["output"], namespaces, source=module.reference)
        except GraphError as error:
            raise RenderError(
                f"{module.reference}: the module rendered an invalid graph", error.diagnostics
            ) from None
        if observed is not None:
            graph = _with_waiting(graph, observed)
        spec = evaluated["input"]["spec"]
        rendered_input = {**instance.render_input(), "spec": spec}
        policy_results = await asyncio.gather(
            *(
                evaluate_policy(policy, rendered_input, graph.to_dict(), self.settings)
                for policy in policies
            )
        )
        violations = list(graph.violations)
        for found in policy_results:
            violations.extend(found)
        return RenderResult(
            spec=spec,
            graph=graph,
            violations=tuple(violations),
            render_hash=hash_value,
            module_digest=module.digest,
            size=measure(graph),
            status=_status(evaluated.get("status")),
        )


def _with_waiting(graph: Graph, observed: dict[str, Any]) -> Graph:
    """The graph with each node that holds a pending value marked as waiting for it, and the
    nodes whose own objects are read checked: a Secret's data is never read."""
    node_paths = observed.get("nodes") or {}
    nodes: list[Node] = []
    for node in graph.nodes:
        if node.id in node_paths:
            refuse_secret_data(
                node.object["apiVersion"],
                node.object["kind"],
                tuple(_leaf_paths(node_paths[node.id])),
                f"#Observe.nodes.{node.id}",
            )
        waiting = pending_paths(node.object)
        nodes.append(replace(node, waiting_for=tuple(waiting)) if waiting else node)
    return replace(graph, nodes=tuple(nodes))


def _leaf_paths(value: Any, prefix: str = "") -> list[str]:
    if not isinstance(value, dict) or not value:
        return [prefix] if prefix else []
    return [p for k, v in value.items() for p in _leaf_paths(v, f"{prefix}.{k}" if prefix else k)]


def _status(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {}
    cleaned: dict[str, Any] = without_pending(value)
    return cleaned


OBSERVE_SHAPE = (
    "{input?: _, nodes?: [string]: [...string], references?: [string]: {apiVersion: string, "
    "kind: string, name: string, namespace?: string, paths: [...string]}}"
)
"""What ``#Observe`` may hold (docs/module-contract.md), in CUE: unified with the module's, so
a wrong field's error names the module's file and line."""


async def check_observe(module: ModuleSource, settings: CueSettings | None) -> bool:
    """Whether the module defines ``#Observe``; raises :class:`RenderError` when it does not
    have the shape of one. Values that depend on the instance are checked when it renders."""
    if not await defines(module, "#Observe", settings):
        return False
    try:
        await run_cue(
            ["eval", "-e", f"#Observe & {OBSERVE_SHAPE}", "."],
            cwd=module.directory,
            settings=settings,
        )
    except CueError as error:
        raise RenderError(
            f"{module.reference}: #Observe is not what docs/module-contract.md describes",
            [d for d in error.diagnostics],
        ) from None
    return True


@dataclass(frozen=True)
class ModuleContract:
    """The optional parts of the module contract a module defines."""

    observes: bool
    publishes_status: bool

    @property
    def live_state(self) -> bool:
        """Rendered with ``observed`` and exporting ``status``; a module with neither is
        rendered exactly as before they existed (a cheaper ``cue`` run)."""
        return self.observes or self.publishes_status


async def module_contract(module: ModuleSource, settings: CueSettings | None) -> ModuleContract:
    observes, publishes_status = await asyncio.gather(
        defines(module, "#Observe", settings), defines(module, "#Status", settings)
    )
    return ModuleContract(observes, publishes_status)


async def defines(module: ModuleSource, definition: str, settings: CueSettings | None) -> bool:
    """Whether the module's package defines ``definition`` (one ``cue`` run)."""
    try:
        await run_cue(["eval", "-e", definition, "."], cwd=module.directory, settings=settings)
    except CueError as error:
        if any(f'reference "{definition}" not found' in d.message for d in error.diagnostics):
            return False
        raise  # cue's own words: the module does not load, or cue ran out of time
    return True


__all__ = ["GraphTooLargeError", "ObserveError", "RenderError", "RenderResult", "Renderer"]
