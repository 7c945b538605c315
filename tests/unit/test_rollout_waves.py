"""The rollout's step, as a pure function: canary first, waves in name order, a wave waits
for its instances to be Ready on the target, a deadline fails it, Pause and Rollback."""

from __future__ import annotations

import datetime

import pytest

from pequod.api.resource_graph import RenderMetadata, ResourceGraphSpec, SourceRef
from pequod.api.revisions import Revision, beyond_limit
from pequod.api.rollout import (
    COMPLETE,
    FAILED,
    PAUSED,
    ROLLED_BACK,
    InstanceView,
    ModuleVersion,
    RolloutError,
    RolloutSpec,
    RolloutState,
    advance,
    count_of,
    progress_only,
    start,
)

T0 = datetime.datetime(2026, 12, 3, 12, 0, 0, tzinfo=datetime.UTC)
OLD = ModuleVersion("embedded:web@1", "sha256:old")
NEW = ModuleVersion("embedded:web@2", "sha256:new")
SPEC = RolloutSpec(strategy="Waves", canary_instances=2, wave_size=6, wave_deadline_seconds=60)


def views(n: int, *, on_new: set[str] | None = None, ready: bool = True) -> list[InstanceView]:
    on_new = on_new or set()
    keys = [f"ns/i{i:02d}" for i in range(n)]
    return [
        InstanceView(k, digest=NEW.digest if k in on_new else OLD.digest, ready=ready) for k in keys
    ]


def later(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def test_counts_and_percentages() -> None:
    assert count_of(6, 20) == 6
    assert count_of("25%", 20) == 5
    assert count_of("1%", 20) == 1
    assert count_of(50, 20) == 20
    assert count_of(3, 0) == 0
    with pytest.raises(RolloutError):
        count_of("a lot", 20)


def test_waves_go_in_order_and_complete() -> None:
    state = start(NEW, OLD, T0)
    state, _ = advance(SPEC, state, views(20), T0)
    assert [w.instances for w in state.waves] == [("ns/i00", "ns/i01")]
    # The canary is not Ready on the new version yet: no new wave.
    state, requeue = advance(SPEC, state, views(20), later(10))
    assert len(state.waves) == 1
    assert requeue is not None
    moved: set[str] = set(state.moved)
    for step in range(1, 10):
        state, _ = advance(SPEC, state, views(20, on_new=moved), later(10 + step))
        moved = set(state.moved)
        if state.phase == COMPLETE:
            break
    assert state.phase == COMPLETE
    sizes = [len(w.instances) for w in state.waves]
    assert sizes == [2, 6, 6, 6]
    assert sorted(state.moved) == [f"ns/i{i:02d}" for i in range(20)]
    assert state.updated == 20
    assert state.ready == 20


def test_a_wave_not_ready_by_its_deadline_pauses_the_rollout() -> None:
    state, _ = advance(SPEC, start(NEW, OLD, T0), views(20), T0)
    canary = set(state.moved)
    state, _ = advance(SPEC, state, views(20, on_new=canary, ready=False), later(61))
    assert state.phase == FAILED
    assert {f.instance for f in state.failed} == canary
    assert not state.renders_target("ns/i05")  # never moved: stays on the previous version
    assert state.renders_target("ns/i00")  # Pause leaves the canary where it is
    # Failed stays failed: no later wave.
    again, _ = advance(SPEC, state, views(20, on_new=canary), later(300))
    assert again.waves == state.waves
    assert again.phase == FAILED


def test_rollback_puts_every_moved_instance_back() -> None:
    spec = RolloutSpec(**{**SPEC.__dict__, "on_failure": "Rollback"})
    state, _ = advance(spec, start(NEW, OLD, T0), views(20), T0)
    state, _ = advance(spec, state, views(20, on_new=set(state.moved), ready=False), later(61))
    assert state.phase == ROLLED_BACK
    assert not state.renders_target("ns/i00")


def test_paused_starts_no_wave_and_a_restart_resumes_from_the_status() -> None:
    state, _ = advance(SPEC, start(NEW, OLD, T0), views(20), T0)
    paused = RolloutSpec(**{**SPEC.__dict__, "paused": True})
    state, _ = advance(paused, state, views(20, on_new=set(state.moved)), later(5))
    assert state.phase == PAUSED
    assert len(state.waves) == 1
    restored = RolloutState.from_status(state.to_status())
    assert restored == state
    state, _ = advance(SPEC, restored, views(20, on_new=set(state.moved)), later(6))
    assert len(state.waves) == 2
    assert state.waves[0].ready_at


def test_bake_time_delays_the_next_wave() -> None:
    spec = RolloutSpec(**{**SPEC.__dict__, "bake_seconds": 30})
    state, _ = advance(spec, start(NEW, OLD, T0), views(20), T0)
    state, requeue = advance(spec, state, views(20, on_new=set(state.moved)), later(1))
    assert len(state.waves) == 1
    assert requeue == pytest.approx(30)
    state, _ = advance(spec, state, views(20, on_new=set(state.moved)), later(32))
    assert len(state.waves) == 2


def test_the_canary_selector_picks_the_labelled_instances() -> None:
    spec = RolloutSpec(**{**SPEC.__dict__, "canary_selector": {"canary": "yes"}})
    instances = views(20)
    instances[7] = InstanceView("ns/i07", labels={"canary": "yes"}, digest=OLD.digest)
    state, _ = advance(spec, start(NEW, OLD, T0), instances, T0)
    assert state.waves[0].instances == ("ns/i07",)


def test_pinned_instances_are_outside_the_rollout() -> None:
    instances = views(3)
    instances[0] = InstanceView("ns/i00", pinned=True, digest=OLD.digest)
    spec = RolloutSpec(**{**SPEC.__dict__, "canary_instances": 1, "wave_size": 5})
    state, _ = advance(spec, start(NEW, OLD, T0), instances, T0)
    assert state.waves[0].instances == ("ns/i01",)


def _revision(number: int) -> Revision:
    spec = ResourceGraphSpec(
        SourceRef("v1", "K", "n", "u"),
        RenderMetadata("m", "1", "embedded:m@1", f"sha256:{number}", "", "t"),
        (),
    )
    return Revision(f"r{number}", number, "", "", "", "", "", "", spec)


def test_revisions_beyond_the_limit_are_the_oldest_never_the_one_in_force() -> None:
    revisions = [_revision(n) for n in range(1, 13)]
    assert [r.number for r in beyond_limit(revisions, 10, keep="r12")] == [2, 1]
    assert [r.number for r in beyond_limit(revisions, 3, keep="r1")] == list(range(10, 1, -1))


def test_only_the_counts_of_a_progressing_wave_are_held_back() -> None:
    state, _ = advance(SPEC, start(NEW, OLD, T0), views(20), T0)
    one = state.to_status()
    # The first canary Ready: counts and message move, nothing else.
    counted, _ = advance(SPEC, state, views(20, on_new={"ns/i00"}), later(1))
    assert progress_only(one, counted.to_status())
    # Both Ready: the canary's readyAt and the next wave are news.
    both, _ = advance(SPEC, counted, views(20, on_new={"ns/i00", "ns/i01"}), later(2))
    assert len(both.waves) == 2
    assert not progress_only(counted.to_status(), both.to_status())
    # A phase change is news too.
    paused = RolloutState(**{**counted.__dict__, "phase": PAUSED}).to_status()
    assert not progress_only(one, paused)
