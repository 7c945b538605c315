"""RenderEvaluator's queueing, with cue replaced by fakes: a lone render runs by itself,
renders that wait are batched, a failing batch falls back to single evaluations, and a
cancelled render does not stop the others."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pequod.cue.runner import CueError
from pequod.module.source import ModuleSource
from pequod.render import evaluate
from pequod.render.evaluate import Evaluation, RenderError, RenderEvaluator
from pequod.render.instance import Instance

MODULE = ModuleSource(Path("/nonexistent"), "inline", "sha256:" + "0" * 64)


class FakeCue:
    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.batches: list[list[str]] = []
        self.release = asyncio.Event()

    async def one(
        self,
        module: Any,
        evaluation: Evaluation,
        settings: Any,
        purpose: Any = None,
        live_state: bool = True,
    ) -> dict[str, Any]:
        instance = evaluation.instance
        self.batches.append([instance.name])
        await self.release.wait()
        if instance.name in self.failing:
            raise RenderError(f"{instance.name}: bad", [])
        return {"input": {"name": instance.name}, "output": {"nodes": []}}

    async def many(
        self,
        module: Any,
        evaluations: list[Evaluation],
        settings: Any,
        purpose: Any = None,
        live_state: bool = True,
    ) -> list[Any]:
        instances = [e.instance for e in evaluations]
        self.batches.append([i.name for i in instances])
        await self.release.wait()
        if any(i.name in self.failing for i in instances):
            raise CueError("cue exited with status 1", [])
        return [{"input": {"name": i.name}, "output": {"nodes": []}} for i in instances]


@pytest.fixture
def cue(monkeypatch: pytest.MonkeyPatch) -> FakeCue:
    fake = FakeCue()
    monkeypatch.setattr(evaluate, "evaluate_one", fake.one)
    monkeypatch.setattr(evaluate, "evaluate_many", fake.many)
    return fake


def instance(name: str) -> Instance:
    return Instance(name, "ns", {})


async def _render(evaluator: RenderEvaluator, cue: FakeCue, names: list[str]) -> list[Any]:
    tasks = [asyncio.create_task(evaluator.evaluate(MODULE, instance(n))) for n in names]
    await asyncio.sleep(0.01)
    cue.release.set()
    return list(await asyncio.gather(*tasks, return_exceptions=True))


def test_a_lone_render_runs_by_itself(cue: FakeCue) -> None:
    evaluator = RenderEvaluator()
    results = asyncio.run(_render(evaluator, cue, ["a"]))
    assert results[0]["input"]["name"] == "a"
    assert cue.batches == [["a"]]


def test_waiting_renders_are_batched(cue: FakeCue) -> None:
    evaluator = RenderEvaluator(processes_per_module=1, max_batch=3)
    results = asyncio.run(_render(evaluator, cue, ["a", "b", "c", "d", "e"]))
    assert [r["input"]["name"] for r in results] == ["a", "b", "c", "d", "e"]
    assert cue.batches == [["a", "b", "c"], ["d", "e"]]


def test_a_failing_batch_is_evaluated_one_by_one(cue: FakeCue) -> None:
    cue.failing = {"c"}
    evaluator = RenderEvaluator(processes_per_module=1)
    results = asyncio.run(_render(evaluator, cue, ["a", "b", "c", "d"]))
    assert isinstance(results[2], RenderError)
    assert [r["input"]["name"] for i, r in enumerate(results) if i != 2] == ["a", "b", "d"]
    assert cue.batches == [["a", "b", "c", "d"], ["a"], ["b"], ["c"], ["d"]]


def test_a_cancelled_render_leaves_the_others_served(cue: FakeCue) -> None:
    async def scenario() -> list[Any]:
        evaluator = RenderEvaluator(processes_per_module=1)
        tasks = [asyncio.create_task(evaluator.evaluate(MODULE, instance(n))) for n in "abc"]
        await asyncio.sleep(0.01)
        tasks[1].cancel()
        cue.release.set()
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    results = asyncio.run(scenario())
    assert isinstance(results[1], asyncio.CancelledError)
    assert results[0]["input"]["name"] == "a"
    assert results[2]["input"]["name"] == "c"
