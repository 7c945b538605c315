"""Renders of one module that arrive together share a cue process: the results are the same as
one process per render, and an instance that fails in a batch gets exactly the error it gets
alone while the others in its batch render."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pequod.metrics import CUE_EVAL_DURATION
from pequod.module.embedded import load_embedded
from pequod.render.instance import Instance
from pequod.render.render import Renderer, RenderError, RenderResult

MODULE = "webservice@1.1.0"


def instances(count: int) -> list[Instance]:
    return [
        Instance(
            f"shop-{i}",
            "team-a",
            {"image": f"nginx:1.{i}", "replicas": i % 4, "port": 8000 + i},
            labels={"tier": "web"} if i % 2 else {},
        )
        for i in range(count)
    ]


async def render_all(renderer: Renderer, batch: list[Instance]) -> list[Any]:
    module = load_embedded(MODULE)
    return await asyncio.gather(
        *(renderer.render(module, instance) for instance in batch), return_exceptions=True
    )


def outcome(result: Any) -> Any:
    if isinstance(result, RenderResult):
        return result.to_dict()
    assert isinstance(result, RenderError), result
    return (result.summary, [str(d) for d in result.diagnostics])


def exports_counted() -> float:
    return sum(
        s.value
        for s in next(iter(CUE_EVAL_DURATION.collect())).samples
        if s.name.endswith("_count") and s.labels.get("command") != "vet"
    )


def test_a_batch_renders_what_single_processes_render() -> None:
    batch = instances(12)
    before = exports_counted()
    batched = asyncio.run(render_all(Renderer(max_batch=32), batch))
    batched_processes = exports_counted() - before
    single = asyncio.run(render_all(Renderer(max_batch=1), batch))
    assert [outcome(r) for r in batched] == [outcome(r) for r in single]
    assert all(isinstance(r, RenderResult) for r in batched)
    # Two start at once; the others wait and are evaluated together.
    assert batched_processes < len(batch), batched_processes


@pytest.mark.parametrize(
    "bad_spec",
    [
        {"image": "nginx", "bogus": 1},
        {"image": "nginx", "port": 70000},
        {"image": "UPPER CASE"},
        {"port": 80},
    ],
)
def test_a_bad_instance_in_a_batch_gets_its_own_error(bad_spec: dict[str, Any]) -> None:
    batch = instances(6)
    batch[3] = Instance("broken", "team-a", bad_spec)
    batched = asyncio.run(render_all(Renderer(max_batch=32), batch))
    alone = asyncio.run(render_all(Renderer(max_batch=1), [batch[3]]))
    assert isinstance(batched[3], RenderError)
    assert outcome(batched[3]) == outcome(alone[0])
    assert "broken" in batched[3].summary
    others = [r for i, r in enumerate(batched) if i != 3]
    assert all(isinstance(r, RenderResult) for r in others), others
