"""Evaluates ``#Render`` with instances: one ``cue`` process per instance, or one for several
instances of the same module when they arrive together.

Starting ``cue`` and loading the module cost far more than evaluating one more instance (on
the development machine: about 10 ms per process against under 1 ms per extra instance), so
under load the requests for one module are collected while ``cue`` is busy and evaluated
together. A batch that fails is evaluated again one instance at a time, so every error is
reported for its own instance, with the same diagnostics a single evaluation gives."""

from __future__ import annotations

import asyncio
import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

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
_RENDER_FIELDS = ("input", "output", "status")

DEFAULT_MAX_BATCH = 32
DEFAULT_PROCESSES_PER_MODULE = 2

RENDER: Final = "render"
OBSERVE: Final = "observe"
Purpose = Literal["render", "observe"]
"""What an evaluation is for: ``#Render`` (the graph and the status) or ``#Observe`` (what the
render reads)."""

# What Pequod adds to the module's package, in a file given on stdin: the data, and the two
# fields of #Render that modules without live state do not declare (definitions of one
# package are unified before they are closed, so #Render then allows them). `status` defaults
# to an empty struct when the module renders none.
_PACKAGE_ADDITIONS = "#Render: observed: _\n#Render: status: *{} | {...}\n"
_PACKAGE_CLAUSE = re.compile(r"^package\s+([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)


class RenderError(Exception):
    """The instance could not be rendered into a valid graph. ``diagnostics`` says where."""

    def __init__(self, summary: str, diagnostics: list[Diagnostic]) -> None:
        self.summary = summary
        self.diagnostics = diagnostics
        super().__init__("\n".join([summary, *(f"  {d}" for d in diagnostics)]))


@dataclass(frozen=True)
class Evaluation:
    """One instance to evaluate, and the observed values its render is given."""

    instance: Instance
    observed: dict[str, Any] | None = None

    def render_data(self) -> dict[str, Any]:
        return {
            "input": self.instance.render_input(),
            "observed": self.observed or {"nodes": {}, "references": {}},
        }


@functools.lru_cache(maxsize=512)
def package_name(directory: Path, digest: str) -> str | None:
    """The package clause of the module's files (None for files without one): the file Pequod
    adds must be of the same package. ``digest`` keys the cache to the module's content."""
    del digest
    for path in sorted(directory.glob("*.cue")):
        found = _PACKAGE_CLAUSE.search(path.read_text(errors="replace"))
        if found:
            return found.group(1)
    return None


def _stdin(module: ModuleSource, data: dict[str, Any]) -> bytes:
    """The file added to the module's package: ``pequod_data`` (JSON is CUE; ASCII with
    escapes, which both of cue's parsers read, where some raw characters are refused) and the
    fields of #Render it may not declare."""
    package = package_name(module.directory, module.digest)
    clause = f"package {package}\n" if package else ""
    body = json.dumps(data, separators=(",", ":"))
    return f"{clause}pequod_data: {body}\n{_PACKAGE_ADDITIONS}".encode()


def _export_arguments(expression: str, live_state: bool) -> list[str]:
    """``cue export`` of ``expression``: with the file on stdin added to the package, or, for
    a module without live state, with the JSON on stdin placed at ``pequod_data``."""
    stdin = ["cue:", "-"] if live_state else ["json:", "-", "-l", "pequod_data:"]
    return ["export", ".", *stdin, "-e", expression, "--out", "json"]


def _stdin_for(module: ModuleSource, data: dict[str, Any], live_state: bool) -> bytes:
    if live_state:
        return _stdin(module, data)
    return json.dumps(data, separators=(",", ":")).encode()


def _render_fields(data: str, suffix: str = "", live_state: bool = True) -> str:
    if not live_state:
        unified = f"(#Render & {{input: {data}.input}})"
        return ", ".join(f"{name}{suffix}: {unified}.{name}" for name in ("input", "output"))
    unified = f"(#Render & {{input: {data}.input, observed: {data}.observed}})"
    return ", ".join(f"{name}{suffix}: {unified}.{name}" for name in _RENDER_FIELDS)


def _expression(purpose: Purpose, size: int | None, live_state: bool = True) -> str:
    """One instance (``size`` None, data at ``pequod_data``) or a batch (``pequod_data.iN``)."""
    if purpose == OBSERVE:
        if size is None:
            return "{observe: #Observe & {input: pequod_data.input}}"
        fields = ", ".join(
            f"observe{i}: #Observe & {{input: pequod_data.i{i}.input}}" for i in range(size)
        )
        return "{" + fields + "}"
    if size is None:
        return "{" + _render_fields("pequod_data", "", live_state) + ", #schema: #Input}"
    fields = ", ".join(_render_fields(f"pequod_data.i{i}", str(i), live_state) for i in range(size))
    return "{" + fields + ", #schema: #Input}"


async def evaluate_one(
    module: ModuleSource,
    evaluation: Evaluation,
    settings: CueSettings | None,
    purpose: Purpose = RENDER,
    live_state: bool = True,
) -> dict[str, Any]:
    """``{input, output, status}`` of ``#Render`` (or ``{observe}`` of ``#Observe``) with
    the instance: one ``cue`` process. Without ``live_state`` (a module that neither
    observes nor publishes a status), ``{input, output}``."""
    live_state = live_state or purpose == OBSERVE
    try:
        output = await run_cue(
            _export_arguments(_expression(purpose, None, live_state), live_state),
            cwd=module.directory,
            stdin=_stdin_for(module, evaluation.render_data(), live_state),
            settings=settings,
        )
    except CueError as error:
        raise _render_error(module, evaluation.instance, error, purpose) from None
    return _checked(module, json.loads(output), purpose)


async def evaluate_many(
    module: ModuleSource,
    evaluations: list[Evaluation],
    settings: CueSettings | None,
    purpose: Purpose = RENDER,
    live_state: bool = True,
) -> list[dict[str, Any]]:
    """The evaluation of each of ``evaluations``, from one ``cue`` process. Raises
    :class:`CueError` when any of them fails (the caller then evaluates them one by one)."""
    live_state = live_state or purpose == OBSERVE
    documents = {f"i{i}": e.render_data() for i, e in enumerate(evaluations)}
    output = await run_cue(
        _export_arguments(_expression(purpose, len(evaluations), live_state), live_state),
        cwd=module.directory,
        stdin=_stdin_for(module, documents, live_state),
        settings=settings,
    )
    evaluated = json.loads(output)
    if purpose == OBSERVE:
        fields: tuple[str, ...] = ("observe",)
    else:
        fields = _RENDER_FIELDS if live_state else ("input", "output")
    return [{name: evaluated[f"{name}{i}"] for name in fields} for i in range(len(evaluations))]


def _checked(module: ModuleSource, evaluated: dict[str, Any], purpose: Purpose) -> dict[str, Any]:
    if purpose == RENDER and not isinstance(evaluated.get("output"), dict):
        raise RenderError(f"{module.reference}: #Render has no output struct", [])
    return evaluated


def _render_error(
    module: ModuleSource, instance: Instance, error: CueError, purpose: Purpose
) -> RenderError:
    definitions = ("#Observe",) if purpose == OBSERVE else ("#Render", "#Input")
    for definition in definitions:
        if any(f'reference "{definition}" not found' in d.message for d in error.diagnostics):
            return RenderError(
                f"{module.reference}: the module does not define {definition} "
                "(see docs/module-contract.md)",
                [],
            )
    if purpose == RENDER and any(
        d.path == "input" and "field not allowed" in d.message for d in error.diagnostics
    ):
        # What cue says of a module without #Render (or one without input): the fields
        # Pequod adds define a #Render that has none.
        return RenderError(
            f"{module.reference}: the module does not define #Render (see docs/module-contract.md)",
            [],
        )
    diagnostics = tidy(error.diagnostics, strip_prefixes=("input.",))
    summary = (
        f"{instance.namespace}/{instance.name}: the spec is not valid for {module.reference}"
        if any(d.path.startswith("spec") for d in diagnostics)
        else f"{module.reference}: cue could not "
        f"{'read #Observe of' if purpose == OBSERVE else 'render'} "
        f"{instance.namespace}/{instance.name}"
    )
    return RenderError(summary if diagnostics else f"{summary}: {error.summary}", diagnostics)


@dataclass
class _Request:
    evaluation: Evaluation
    result: asyncio.Future[dict[str, Any]]


@dataclass
class _ModuleQueue:
    module: ModuleSource
    purpose: Purpose
    live_state: bool
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
        self._queues: dict[tuple[Path, str, Purpose], _ModuleQueue] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def evaluate(
        self,
        module: ModuleSource,
        instance: Instance,
        observed: dict[str, Any] | None = None,
        purpose: Purpose = RENDER,
        *,
        live_state: bool = True,
    ) -> dict[str, Any]:
        key = (module.directory, module.digest, purpose)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _ModuleQueue(module, purpose, live_state)
        request = _Request(
            Evaluation(instance, observed), asyncio.get_running_loop().create_future()
        )
        queue.waiting.append(request)
        if queue.running < self.processes_per_module:
            queue.running += 1
            task = asyncio.create_task(self._drain(key, queue))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await request.result

    async def _drain(self, key: tuple[Path, str, Purpose], queue: _ModuleQueue) -> None:
        try:
            while queue.waiting:
                batch = queue.waiting[: self.max_batch]
                del queue.waiting[: self.max_batch]
                try:
                    await self._run(queue, batch)
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

    async def _run(self, queue: _ModuleQueue, batch: list[_Request]) -> None:
        module, purpose, live_state = queue.module, queue.purpose, queue.live_state
        RENDER_BATCH_SIZE.observe(len(batch))
        if len(batch) > 1:
            try:
                results = await evaluate_many(
                    module, [r.evaluation for r in batch], self.settings, purpose, live_state
                )
            except Exception:  # one of them is wrong: each is evaluated alone below
                pass
            else:
                for request, evaluated in zip(batch, results, strict=True):
                    try:
                        _set_result(request, _checked(module, evaluated, purpose))
                    except RenderError as error:
                        _set_exception(request, error)
                return
        for request in batch:
            if request.result.done():
                continue  # its reconcile was cancelled
            try:
                evaluated = await evaluate_one(
                    module, request.evaluation, self.settings, purpose, live_state
                )
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
