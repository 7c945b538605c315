"""instance + module (+ policies) → a checked graph with its violations and render hash."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pequod.cue.diagnostics import Diagnostic
from pequod.cue.errors import tidy
from pequod.cue.runner import CueError, CueSettings, run_cue
from pequod.graph.model import SEVERITY_ERROR, Graph, Violation
from pequod.graph.validate import GraphError, NamespacePolicy, build_graph
from pequod.metrics import RENDER_CACHE_HITS, RENDER_CACHE_MISSES
from pequod.module.source import ModuleSource
from pequod.policy.evaluate import evaluate_policy
from pequod.render.cache import RenderCache
from pequod.render.instance import Instance, canonical_json, render_hash

# The instance is unified with #Render inside a struct literal, once per exported field: cue
# v0.17 checks closed definitions (unknown fields in the spec) in this form, but not when the
# bare `#Render & {...}` is the whole expression. `#schema` makes a module without #Input fail.
# tests/integration/test_render_errors.py guards this.
_RENDER_EXPRESSION = (
    "{input: (#Render & {input: pequod_instance}).input, "
    "output: (#Render & {input: pequod_instance}).output, "
    "#schema: #Input}"
)


class RenderError(Exception):
    """The instance could not be rendered into a valid graph. ``diagnostics`` says where."""

    def __init__(self, summary: str, diagnostics: list[Diagnostic]) -> None:
        self.summary = summary
        self.diagnostics = diagnostics
        super().__init__("\n".join([summary, *(f"  {d}" for d in diagnostics)]))


@dataclass(frozen=True)
class RenderResult:
    spec: dict[str, Any]
    """The instance's spec with the module's defaults filled in."""
    graph: Graph
    violations: tuple[Violation, ...]
    """The module's own violations, then every policy's."""
    render_hash: str
    module_digest: str

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


class Renderer:
    """Renders with a cache keyed by render hash: the same module, policies and input are
    rendered by ``cue`` once."""

    def __init__(self, settings: CueSettings | None = None, cache_entries: int = 4096) -> None:
        self.settings = settings
        self.cache: RenderCache[RenderResult] = RenderCache(cache_entries)

    async def render(
        self,
        module: ModuleSource,
        instance: Instance,
        *,
        policies: Sequence[ModuleSource] = (),
        namespaces: NamespacePolicy | None = None,
    ) -> RenderResult:
        namespaces = namespaces or NamespacePolicy(instance.namespace)
        hash_value = render_hash(module.digest, instance, tuple(p.digest for p in policies))
        cache_key = hash_value + "/" + canonical_json(namespaces.__dict__).decode()
        cached = self.cache.get(cache_key)
        if cached is not None:
            RENDER_CACHE_HITS.inc()
            return cached
        RENDER_CACHE_MISSES.inc()
        result = await self._render(module, instance, policies, namespaces, hash_value)
        self.cache.put(cache_key, result)
        return result

    async def _render(
        self,
        module: ModuleSource,
        instance: Instance,
        policies: Sequence[ModuleSource],
        namespaces: NamespacePolicy,
        hash_value: str,
    ) -> RenderResult:
        evaluated = await _evaluate_render(module, instance, self.settings)
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
        )


async def _evaluate_render(
    module: ModuleSource, instance: Instance, settings: CueSettings | None
) -> dict[str, Any]:
    try:
        output = await run_cue(
            [
                "export",
                ".",
                "json:",
                "-",
                "-l",
                "pequod_instance:",
                "-e",
                _RENDER_EXPRESSION,
                "--out",
                "json",
            ],
            cwd=module.directory,
            stdin=json.dumps(instance.render_input()).encode(),
            settings=settings,
        )
    except CueError as error:
        for definition in ("#Render", "#Input"):
            if any(f'reference "{definition}" not found' in d.message for d in error.diagnostics):
                raise RenderError(
                    f"{module.reference}: the module does not define {definition} "
                    "(see docs/module-contract.md)",
                    [],
                ) from None
        diagnostics = tidy(error.diagnostics, strip_prefixes=("input.",))
        summary = (
            f"{instance.namespace}/{instance.name}: the spec is not valid for {module.reference}"
            if any(d.path.startswith("spec") for d in diagnostics)
            else f"{module.reference}: cue could not render {instance.namespace}/{instance.name}"
        )
        raise RenderError(
            summary if diagnostics else f"{summary}: {error.summary}", diagnostics
        ) from None
    evaluated: dict[str, Any] = json.loads(output)
    if not isinstance(evaluated.get("output"), dict):
        raise RenderError(f"{module.reference}: #Render has no output struct", [])
    return evaluated
