"""A graph's Ready message names a few nodes, not all: the instance's status repeats it."""

from __future__ import annotations

from pequod.operator.graph_controller import MESSAGE_ENTRIES, _first_few


def test_a_few_entries_are_named_and_the_rest_counted() -> None:
    entries = [f"node-{i}: waiting" for i in range(3000)]
    message = _first_few(entries)
    assert message.startswith("node-0: waiting; node-1: waiting")
    assert f"node-{MESSAGE_ENTRIES - 1}: waiting" in message
    assert f"node-{MESSAGE_ENTRIES}:" not in message
    assert message.endswith(f"; and {3000 - MESSAGE_ENTRIES} more (see status.nodes)")
    assert len(message) < 1000


def test_few_entries_are_all_named_and_long_ones_cut() -> None:
    assert _first_few(["a: x", "b: y"]) == "a: x; b: y"
    assert len(_first_few(["c: " + "z" * 5000])) == 300
