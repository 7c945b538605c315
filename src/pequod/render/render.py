"""instance + module (+ policies) → a checked graph with its violations and render hash."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pequod.cue.runner import CueSettings
from pequod.graph.model import SEVERITY_ERROR, Graph, Violation
from pequod.graph.size import DEFAULT_MAX_GRAPH_BYTES, GraphSize, measure
from pequod.graph.validate import GraphError, NamespacePolicy, build_graph
from pequod.metrics import RENDER_CACHE_HITS, RENDER_CACHE_MISSES
from pequod.module.source import ModuleSource
from pequod.policy.evaluate import evaluate_policy
from pequod.render.cache import RenderCache
from pequod.render.evaluate import DEFAULT_MAX_BATCH, RenderEvaluator
from pequod.render.evaluate import RenderError as RenderError
from pequod.render.instance import Instance, canonical_json, render_hash


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
        self.evaluator = RenderEvaluator(settings, max_batch=max_batch)

    @staticmethod
    def hash(
        module: ModuleSource, instance: Instance, policies: Sequence[ModuleSource] = ()
    ) -> str:
        """The render hash of ``instance`` with ``module`` and ``policies``: what names a
        render (see :func:`pequod.render.instance.render_hash`)."""
        return render_hash(module.digest, instance, tuple(p.digest for p in policies))

    async def render(
        self,
        module: ModuleSource,
        instance: Instance,
        *,
        policies: Sequence[ModuleSource] = (),
        namespaces: NamespacePolicy | None = None,
        render_hash: str | None = None,
    ) -> RenderResult:
        """The render of ``instance``; ``render_hash``, when the caller has it already, is
        :meth:`hash` of the same arguments (not computed twice)."""
        namespaces = namespaces or NamespacePolicy(instance.namespace)
        hash_value = render_hash or self.hash(module, instance, policies)
        cache_key = hash_value + "/" + canonical_json(namespaces.__dict__).decode()
        result = self.cache.get(cache_key)
        if result is not None:
            RENDER_CACHE_HITS.inc()
        else:
            RENDER_CACHE_MISSES.inc()
            result = await self._render(module, instance, policies, namespaces, hash_value)
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
    ) -> RenderResult:
        evaluated = await self.evaluator.evaluate(module, instance)
        try:
            graph = build_graph(evaluated["output"], namespaces, source=module.reference)
        except GraphError as error:
            raise RenderError(
                f"{module.reference}: the module rendered an invalid graph", error.diagnostics
            ) from None
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
        )
