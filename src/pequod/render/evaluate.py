"""Evaluates ``#Render`` with instances: one ``cue`` process per instance, or one for several
instances of the same module when they arrive together.

Starting ``cue`` and loading the module cost far more than evaluating one more instance (on
the development machine: about 10 ms per process against under 1 ms per extra instance), so
under load the requests for one module are collected while ``cue`` is busy and evaluated
together. A batch that fails is evaluated again one instance at a time, so every error is
reported for its own instance, with the same diagnostics a single evaluation gives."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pequod.cue.diagnostics import Diagnostic
from pequod.cue.errors import tidy
from pequod.cue.runner import CueError, CueSettings, run_cue
from pequod.metrics import RENDER_BATCH_SIZE
from pequod.module.source import ModuleSource
from pequod.render.instance import Instance

# The instance is unified with #Render inside a struct literal, once per exported field: cue
# v0.17 checks closed definitions (unknown fields in the spec) in this form, but not when the
# bare `#Render & {...}` is the whole expression, nor when the fields sit one struct deeper
# (so a batch names its fields input0, output0, input1... at the top).
# `#schema` makes a module without #Input fail. tests/integration/test_render_errors.py and
# tests/integration/test_render_batches.py guard this.
_RENDER_EXPRESSION = (
    "{input: (#Render & {input: pequod_instance}).input, "
    "output: (#Render & {input: pequod_instance}).output, "
    "#schema: #Input}"
)

DEFAULT_MAX_BATCH = 32
DEFAULT_PROCESSES_PER_MODULE = 2


class RenderError(Exception):
    """The instance could not be rendered into a valid graph. ``diagnostics`` says where."""

    def __init__(self, summary: str, diagnostics: list[Diagnostic]) -> None:
        self.summary = summary
        self.diagnostics = diagnostics
        super().__init__("\n".join([summary, *(f"  {d}" for d in diagnostics)]))


def _export_arguments(label: str, expression: str) -> list[str]:
    """``cue export`` of ``expression`` with the JSON on stdin placed at ``label``."""
    return ["export", ".", "json:", "-", "-l", label, "-e", expression, "--out", "json"]


def _batch_expression(size: int) -> str:
    fields = ", ".join(
        f"input{i}: (#Render & {{input: pequod_instances.i{i}}}).input, "
        f"output{i}: (#Render & {{input: pequod_instances.i{i}}}).output"
        for i in range(size)
    )
    return "{" + fields + ", #schema: #Input}"


async def evaluate_one(
    module: ModuleSource, instance: Instance, settings: CueSettings | None
) -> dict[str, Any]:
    """``{input, output}`` of ``#Render`` with ``instance``: one ``cue`` process."""
    try:
        output = await run_cue(
            _export_arguments("pequod_instance:", _RENDER_EXPRESSION),
            cwd=module.directory,
            stdin=json.dumps(instance.render_input()).encode(),
            settings=settings,
        )
    except CueError as error:
        raise _render_error(module, instance, error) from None
    return _checked(module, json.loads(output))


async def evaluate_many(
    module: ModuleSource, instances: list[Instance], settings: CueSettings | None
) -> list[dict[str, Any]]:
    """``{input, output}`` for each of ``instances``, from one ``cue`` process. Raises
    :class:`CueError` when any of them fails (the caller then evaluates them one by one)."""
    documents = {f"i{i}": instance.render_input() for i, instance in enumerate(instances)}
    output = await run_cue(
        _export_arguments("pequod_instances:", _batch_expression(len(instances))),
        cwd=module.directory,
        stdin=json.dumps(documents).encode(),
        settings=settings,
    )
    evaluated = json.loads(output)
    return [
        {"input": evaluated[f"input{i}"], "output": evaluated[f"output{i}"]}
        for i in range(len(instances))
    ]


def _checked(module: ModuleSource, evaluated: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(evaluated.get("output"), dict):
        raise RenderError(f"{module.reference}: #Render has no output struct", [])
    return evaluated


def _render_error(module: ModuleSource, instance: Instance, error: CueError) -> RenderError:
    for definition in ("#Render", "#Input"):
        if any(f'reference "{definition}" not found' in d.message for d in error.diagnostics):
            return RenderError(
                f"{module.reference}: the module does not define {definition} "
                "(see docs/module-contract.md)",
                [],
            )
    diagnostics = tidy(error.diagnostics, strip_prefixes=("input.",))
    summary = (
        f"{instance.namespace}/{instance.name}: the spec is not valid for {module.reference}"
        if any(d.path.startswith("spec") for d in diagnostics)
        else f"{module.reference}: cue could not render {instance.namespace}/{instance.name}"
    )
    return RenderError(summary if diagnostics else f"{summary}: {error.summary}", diagnostics)


@dataclass
class _Request:
    instance: Instance
    result: asyncio.Future[dict[str, Any]]


@dataclass
class _ModuleQueue:
    module: ModuleSource
    waiting: list[_Request] = field(default_factory=list)
    running: int = 0


class RenderEvaluator:
    """Evaluates renders, batching the requests for one module that wait while its ``cue``
    processes are busy (at most ``processes_per_module`` at once, ``max_batch`` instances
    each). A lone request runs at once, by itself."""

    def __init__(
        self,
        settings: CueSettings | None = None,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        processes_per_module: int = DEFAULT_PROCESSES_PER_MODULE,
    ) -> None:
        self.settings = settings
        self.max_batch = max(1, max_batch)
        self.processes_per_module = max(1, processes_per_module)
        self._queues: dict[tuple[Path, str], _ModuleQueue] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def evaluate(self, module: ModuleSource, instance: Instance) -> dict[str, Any]:
        key = (module.directory, module.digest)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _ModuleQueue(module)
        request = _Request(instance, asyncio.get_running_loop().create_future())
        queue.waiting.append(request)
        if queue.running < self.processes_per_module:
            queue.running += 1
            task = asyncio.create_task(self._drain(key, queue))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await request.result

    async def _drain(self, key: tuple[Path, str], queue: _ModuleQueue) -> None:
        try:
            while queue.waiting:
                batch = queue.waiting[: self.max_batch]
                del queue.waiting[: self.max_batch]
                try:
                    await self._run(queue.module, batch)
                except asyncio.CancelledError:
                    # Shutdown: nobody is left to settle these.
                    for request in batch:
                        request.result.cancel()
                    raise
                except Exception as error:  # a surprise fails this batch, not the queue
                    for request in batch:
                        _set_exception(request, error)
        finally:
            queue.running -= 1
            if not queue.running:
                for request in queue.waiting:  # left only when this drain was cancelled
                    request.result.cancel()
                queue.waiting.clear()
                self._queues.pop(key, None)

    async def _run(self, module: ModuleSource, batch: list[_Request]) -> None:
        RENDER_BATCH_SIZE.observe(len(batch))
        if len(batch) > 1:
            try:
                results = await evaluate_many(module, [r.instance for r in batch], self.settings)
            except Exception:  # one of them is wrong: each is evaluated alone below
                pass
            else:
                for request, evaluated in zip(batch, results, strict=True):
                    try:
                        _set_result(request, _checked(module, evaluated))
                    except RenderError as error:
                        _set_exception(request, error)
                return
        for request in batch:
            if request.result.done():
                continue  # its reconcile was cancelled
            try:
                evaluated = await evaluate_one(module, request.instance, self.settings)
            except Exception as error:  # handed to the render waiting for it
                _set_exception(request, error)
            else:
                _set_result(request, evaluated)


def _set_result(request: _Request, evaluated: dict[str, Any]) -> None:
    if not request.result.done():
        request.result.set_result(evaluated)


def _set_exception(request: _Request, error: BaseException) -> None:
    if not request.result.done():
        request.result.set_exception(error)
