"""The work queue: de-duplication, ordering, delays, backoff, shut down and workers.

Timings are kept out of the assertions where possible: delayed keys are checked by the order
they arrive in, and every wait has a generous time limit that only guards against hanging.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest
import structlog

from pequod.kube.workqueue import QueueShutDown, WorkQueue, run_workers

# Only stops a broken test from hanging; nothing should come close to it.
LIMIT = 10.0


async def get_all(queue: WorkQueue[str], count: int) -> list[str]:
    """Take ``count`` keys off ``queue``, marking each done, in the order they come."""
    keys = []
    async with asyncio.timeout(LIMIT):
        for _ in range(count):
            key = await queue.get()
            queue.done(key)
            keys.append(key)
    return keys


async def settle() -> None:
    """Let every task that is ready run for a few rounds of the event loop."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_waiting_key_is_queued_once() -> None:
    queue: WorkQueue[str] = WorkQueue("test")
    queue.add("a")
    queue.add("b")
    queue.add("a")
    assert len(queue) == 2
    assert await get_all(queue, 2) == ["a", "b"]
    assert len(queue) == 0


async def test_keys_come_out_in_the_order_they_went_in() -> None:
    queue: WorkQueue[str] = WorkQueue("test")
    for key in ["c", "a", "d", "b"]:
        queue.add(key)
    assert await get_all(queue, 4) == ["c", "a", "d", "b"]


async def test_get_waits_for_a_key() -> None:
    queue: WorkQueue[str] = WorkQueue("test")
    getter = asyncio.create_task(queue.get())
    await settle()
    assert not getter.done()
    queue.add("a")
    async with asyncio.timeout(LIMIT):
        assert await getter == "a"
    assert queue.processing_count == 1


async def test_a_key_added_while_processing_is_queued_again_after_done() -> None:
    queue: WorkQueue[str] = WorkQueue("test")
    queue.add("a")
    key = await queue.get()
    queue.add("a")
    queue.add("a")
    queue.add("b")
    # "a" is processing, so only "b" may be handed out.
    assert len(queue) == 1
    assert queue.processing_count == 1
    assert await queue.get() == "b"
    queue.done("b")
    queue.done(key)
    assert len(queue) == 1
    assert await get_all(queue, 1) == ["a"]
    assert len(queue) == 0
    assert queue.processing_count == 0


async def test_done_for_a_clean_key_does_not_queue_it() -> None:
    queue: WorkQueue[str] = WorkQueue("test")
    queue.add("a")
    queue.done(await queue.get())
    assert len(queue) == 0
    queue.done("never-handed-out")
    assert len(queue) == 0


async def test_a_waiting_getter_is_not_handed_a_key_that_is_processing() -> None:
    queue: WorkQueue[str] = WorkQueue("test")
    queue.add("a")
    key = await queue.get()
    getter = asyncio.create_task(queue.get())
    queue.add("a")
    await settle()
    assert not getter.done()
    queue.done(key)
    async with asyncio.timeout(LIMIT):
        assert await getter == "a"


async def test_a_cancelled_getter_passes_its_key_on() -> None:
    queue: WorkQueue[str] = WorkQueue("test")
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await settle()
    queue.add("a")
    # The key wakes the first getter, which is cancelled before it can take it.
    first.cancel()
    async with asyncio.timeout(LIMIT):
        assert await second == "a"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_the_same_key_is_never_processed_twice_at_once() -> None:
    queue: WorkQueue[str] = WorkQueue("test")
    keys = ["a", "b", "c"]
    active: Counter[str] = Counter()
    most_at_once_per_key: Counter[str] = Counter()
    most_at_once = 0
    processed: Counter[str] = Counter()

    async def handler(key: str) -> None:
        nonlocal most_at_once
        active[key] += 1
        most_at_once_per_key[key] = max(most_at_once_per_key[key], active[key])
        most_at_once = max(most_at_once, active.total())
        for _ in range(3):
            await asyncio.sleep(0)
        processed[key] += 1
        active[key] -= 1

    workers = asyncio.create_task(run_workers(queue, handler, concurrency=4))
    rng = random.Random(7)
    for _ in range(500):
        queue.add(rng.choice(keys))
        if rng.random() < 0.5:
            await asyncio.sleep(0)
    async with asyncio.timeout(LIMIT):
        await queue.wait_idle()
        queue.shut_down()
        await workers

    assert set(processed) == set(keys)
    assert all(most_at_once_per_key[key] == 1 for key in keys)
    # The workers did run side by side, on different keys.
    assert most_at_once > 1


async def test_delayed_keys_arrive_in_deadline_order() -> None:
    queue: WorkQueue[str] = WorkQueue("test")
    queue.add_after("late", 0.3)
    queue.add_after("early", 0.05)
    queue.add_after("middle", 0.15)
    assert len(queue) == 0
    assert queue.delayed_count == 3
    assert await get_all(queue, 3) == ["early", "middle", "late"]
    assert queue.delayed_count == 0


async def test_add_after_without_a_positive_delay_adds_now() -> None:
    queue: WorkQueue[str] = WorkQueue("test")
    queue.add_after("a", 0)
    queue.add_after("b", -1)
    assert len(queue) == 2
    assert queue.delayed_count == 0


async def test_an_earlier_deadline_replaces_a_later_one() -> None:
    queue: WorkQueue[str] = WorkQueue("test")
    queue.add_after("a", 60)
    queue.add_after("a", 0.01)
    assert queue.delayed_count == 1
    assert await get_all(queue, 1) == ["a"]
    # The 60 second timer went with it.
    assert queue.delayed_count == 0


async def test_a_later_deadline_does_not_replace_an_earlier_one() -> None:
    queue: WorkQueue[str] = WorkQueue("test")
    queue.add_after("a", 0.01)
    queue.add_after("a", 60)
    assert queue.delayed_count == 1
    assert await get_all(queue, 1) == ["a"]
    assert queue.delayed_count == 0


async def test_a_delayed_key_that_is_already_waiting_is_not_queued_twice() -> None:
    queue: WorkQueue[str] = WorkQueue("test")
    queue.add("a")
    queue.add_after("a", 0.01)
    # Timers run in deadline order, so the delayed add has happened when this sleep ends.
    await asyncio.sleep(0.05)
    assert queue.delayed_count == 0
    assert len(queue) == 1


async def test_backoff_doubles_per_failure_up_to_the_cap() -> None:
    queue: WorkQueue[str] = WorkQueue("test", base_delay=1.0, max_delay=10.0, jitter=0)
    delays = []
    for expected_failures in range(6):
        assert queue.failures("a") == expected_failures
        delays.append(queue.next_backoff("a"))
        queue.add_rate_limited("a")
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert queue.failures("a") == 6
    # Other keys keep their own count.
    assert queue.failures("b") == 0
    assert queue.next_backoff("b") == 1.0
    queue.shut_down()


async def test_next_backoff_changes_nothing() -> None:
    queue: WorkQueue[str] = WorkQueue("test", base_delay=1.0, jitter=0)
    queue.add_rate_limited("a")
    assert queue.next_backoff("a") == queue.next_backoff("a") == 2.0
    assert queue.failures("a") == 1
    assert queue.delayed_count == 1
    queue.shut_down()


async def test_forget_resets_the_backoff() -> None:
    queue: WorkQueue[str] = WorkQueue("test", base_delay=1.0, jitter=0)
    for _ in range(3):
        queue.add_rate_limited("a")
    assert queue.next_backoff("a") == 8.0
    queue.forget("a")
    assert queue.failures("a") == 0
    assert queue.next_backoff("a") == 1.0
    queue.forget("never-seen")
    queue.shut_down()


async def test_backoff_stays_capped_after_very_many_failures() -> None:
    queue: WorkQueue[str] = WorkQueue("test", base_delay=1.0, max_delay=300.0, jitter=0)
    for _ in range(1100):
        queue.add_rate_limited("a")
    assert queue.failures("a") == 1100
    assert queue.next_backoff("a") == 300.0
    queue.shut_down()


async def test_rate_limited_key_waits_its_backoff_stretched_by_jitter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    jitter_ranges: list[tuple[float, float]] = []

    def largest_jitter(low: float, high: float) -> float:
        jitter_ranges.append((low, high))
        return high

    monkeypatch.setattr(random, "uniform", largest_jitter)
    queue: WorkQueue[str] = WorkQueue("test", base_delay=0.05, jitter=0.5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    queue.add_rate_limited("a")
    assert len(queue) == 0
    assert queue.delayed_count == 1
    assert await get_all(queue, 1) == ["a"]
    # 0.05 * (1 + 0.5); timers never fire early, so only the lower bound is checked.
    assert loop.time() - started >= 0.07
    assert jitter_ranges == [(0, 0.5)]


async def test_shut_down_wakes_every_waiting_getter() -> None:
    queue: WorkQueue[str] = WorkQueue("test")
    getters = [asyncio.create_task(queue.get()) for _ in range(3)]
    await settle()
    queue.shut_down()
    async with asyncio.timeout(LIMIT):
        results = await asyncio.gather(*getters, return_exceptions=True)
    assert all(isinstance(result, QueueShutDown) for result in results)
    with pytest.raises(QueueShutDown):
        await queue.get()


async def test_shut_down_cancels_delayed_keys_and_ignores_new_ones() -> None:
    queue: WorkQueue[str] = WorkQueue("test")
    queue.add_after("soon", 0.01)
    queue.add_after("later", 60)
    queue.shut_down()
    assert queue.delayed_count == 0
    queue.add("a")
    queue.add_after("b", 0.01)
    queue.add_rate_limited("c")
    assert len(queue) == 0
    assert queue.delayed_count == 0
    await asyncio.sleep(0.05)
    assert len(queue) == 0
    assert queue.is_shut_down
    with pytest.raises(QueueShutDown):
        await queue.get()


async def test_keys_queued_before_shut_down_are_still_handed_out() -> None:
    queue: WorkQueue[str] = WorkQueue("test")
    queue.add("a")
    queue.add("b")
    queue.shut_down()
    assert await get_all(queue, 2) == ["a", "b"]
    with pytest.raises(QueueShutDown):
        await queue.get()


async def test_wait_idle_returns_at_once_on_an_idle_queue() -> None:
    queue: WorkQueue[str] = WorkQueue("test")
    async with asyncio.timeout(LIMIT):
        await queue.wait_idle()


async def test_wait_idle_waits_for_queued_processing_and_delayed_keys() -> None:
    queue: WorkQueue[str] = WorkQueue("test")
    queue.add("a")
    queue.add_after("b", 0.01)
    idle = asyncio.create_task(queue.wait_idle())
    await settle()
    assert not idle.done()

    first = await queue.get()
    await settle()
    assert not idle.done()
    queue.done(first)
    await settle()
    assert not idle.done()  # "b" is still delayed

    async with asyncio.timeout(LIMIT):
        second = await queue.get()
    assert second == "b"
    await settle()
    assert not idle.done()  # "b" is processing
    queue.done(second)
    async with asyncio.timeout(LIMIT):
        await idle


async def test_wait_idle_returns_when_shut_down_cancels_the_last_delayed_key() -> None:
    queue: WorkQueue[str] = WorkQueue("test")
    queue.add_after("a", 60)
    idle = asyncio.create_task(queue.wait_idle())
    await settle()
    assert not idle.done()
    queue.shut_down()
    async with asyncio.timeout(LIMIT):
        await idle


async def test_workers_survive_a_failing_handler_and_retry_with_backoff() -> None:
    queue: WorkQueue[str] = WorkQueue("test", base_delay=0.001, jitter=0)
    attempts: list[tuple[str, int]] = []
    good_done = asyncio.Event()
    bad_done = asyncio.Event()

    async def handler(key: str) -> None:
        attempts.append((key, queue.failures(key)))
        if key == "bad" and queue.failures(key) < 2:
            raise RuntimeError("boom")
        (bad_done if key == "bad" else good_done).set()

    with structlog.testing.capture_logs() as logs:
        # A single worker: if a failure killed it, "good" would never be processed.
        workers = asyncio.create_task(run_workers(queue, handler, concurrency=1))
        queue.add("bad")
        queue.add("good")
        async with asyncio.timeout(LIMIT):
            await good_done.wait()
            await bad_done.wait()
            await queue.wait_idle()
            queue.shut_down()
            await workers

    # Each retry of "bad" came through add_rate_limited, which counted the failure before it.
    assert [failures for key, failures in attempts if key == "bad"] == [0, 1, 2]
    assert ("good", 0) in attempts
    # Success forgets the failures.
    assert queue.failures("bad") == 0
    failures = [entry for entry in logs if entry["event"] == "work item failed"]
    assert len(failures) == 2
    assert all(entry["queue"] == "test" and entry["key"] == "bad" for entry in failures)
    assert all(entry["log_level"] == "error" and entry["exc_info"] for entry in failures)


async def test_run_workers_returns_after_shut_down_once_in_flight_keys_are_done() -> None:
    queue: WorkQueue[str] = WorkQueue("test")
    started = asyncio.Event()
    release = asyncio.Event()
    finished: list[str] = []

    async def handler(key: str) -> None:
        started.set()
        await release.wait()
        finished.append(key)

    workers = asyncio.create_task(run_workers(queue, handler, concurrency=2))
    queue.add("a")
    async with asyncio.timeout(LIMIT):
        await started.wait()
    queue.shut_down()
    await settle()
    assert not workers.done()
    release.set()
    async with asyncio.timeout(LIMIT):
        await workers
    assert finished == ["a"]
    assert queue.processing_count == 0


async def test_cancelling_run_workers_cancels_the_workers() -> None:
    queue: WorkQueue[str] = WorkQueue("test")
    started = asyncio.Event()
    cancelled: list[str] = []

    async def handler(key: str) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(key)
            raise

    workers = asyncio.create_task(run_workers(queue, handler, concurrency=3))
    queue.add("a")
    async with asyncio.timeout(LIMIT):
        await started.wait()
    workers.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(LIMIT):
            await workers
    assert cancelled == ["a"]
    assert queue.processing_count == 0


async def test_run_workers_needs_at_least_one_worker() -> None:
    queue: WorkQueue[str] = WorkQueue("test")
    with pytest.raises(ValueError, match="concurrency"):
        await run_workers(queue, lambda key: asyncio.sleep(0), concurrency=0)


def test_negative_delays_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        WorkQueue("test", base_delay=-1)
    with pytest.raises(ValueError, match="negative"):
        WorkQueue("test", jitter=-0.1)
