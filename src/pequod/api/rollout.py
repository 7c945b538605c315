"""A Transform's rollout of a new module version to its instances: the settings
(``spec.rollout``), the state kept in ``status.rollout`` (so that it survives a restart or a
failover), and the one step that moves it on, a pure function of what the instances' statuses
say. The Transform controller takes the step; the instance controller asks the state which
version an instance renders with; ``pequod rollout status`` prints it."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from pequod.clock import parse_timestamp, timestamp

ALL_AT_ONCE = "AllAtOnce"
WAVES = "Waves"
PAUSE = "Pause"
ROLLBACK = "Rollback"

PROGRESSING = "Progressing"
PAUSED = "Paused"
FAILED = "Failed"
ROLLED_BACK = "RolledBack"
COMPLETE = "Complete"
ACTIVE_PHASES = (PROGRESSING, PAUSED, FAILED)
"""Phases in which instances not moved yet stay on the previous version."""

DEFAULT_WAVE_SIZE = "25%"
DEFAULT_WAVE_DEADLINE_SECONDS = 600
FAILED_INSTANCES_SHOWN = 20
"""The failed instances the status names (the count says how many there are)."""


class RolloutError(ValueError):
    """A ``spec.rollout`` the API server's schema let through but that cannot be used."""


@dataclass(frozen=True)
class RolloutSpec:
    strategy: str = ALL_AT_ONCE
    canary_instances: int | str = 1
    canary_selector: Mapping[str, str] | None = None
    wave_size: int | str = DEFAULT_WAVE_SIZE
    bake_seconds: int = 0
    wave_deadline_seconds: int = DEFAULT_WAVE_DEADLINE_SECONDS
    on_failure: str = PAUSE
    paused: bool = False

    @classmethod
    def of_transform(cls, transform: Mapping[str, Any]) -> RolloutSpec:
        spec = (transform.get("spec") or {}).get("rollout") or {}
        canary = spec.get("canary") or {}
        selector = (canary.get("selector") or {}).get("matchLabels")
        return cls(
            strategy=spec.get("strategy") or ALL_AT_ONCE,
            canary_instances=canary.get("instances", 1),
            canary_selector=dict(selector) if selector else None,
            wave_size=spec.get("waveSize", DEFAULT_WAVE_SIZE),
            bake_seconds=int(spec.get("bakeSeconds") or 0),
            wave_deadline_seconds=int(
                spec.get("waveDeadlineSeconds") or DEFAULT_WAVE_DEADLINE_SECONDS
            ),
            on_failure=spec.get("onFailure") or PAUSE,
            paused=bool(spec.get("paused", False)),
        )

    @property
    def in_waves(self) -> bool:
        return self.strategy == WAVES


def count_of(value: int | str, total: int) -> int:
    """An IntOrString count of instances: ``6`` or ``"25%"`` (rounded up) of ``total``; at
    least one while there is any."""
    if isinstance(value, str):
        text = value.strip()
        if not text.endswith("%") or not text[:-1].isdigit():
            raise RolloutError(f"{value!r} is neither a number nor a percentage like '25%'")
        count = math.ceil(total * int(text[:-1]) / 100)
    else:
        count = int(value)
    return max(1, min(count, total)) if total else 0


@dataclass(frozen=True)
class ModuleVersion:
    """A module version as the rollout names it; ``cue_ref`` is the Transform's ``cueRef``
    that served it (what ``undo`` puts back, and what resolves it again after a restart)."""

    ref: str
    digest: str
    cue_ref: Mapping[str, Any] | None = None

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> ModuleVersion:
        return cls(status.get("ref", ""), status.get("digest", ""), status.get("cueRef"))

    def to_status(self) -> dict[str, Any]:
        result: dict[str, Any] = {"ref": self.ref, "digest": self.digest}
        if self.cue_ref is not None:
            result["cueRef"] = dict(self.cue_ref)
        return result


@dataclass(frozen=True)
class Wave:
    number: int
    started_at: str
    instances: tuple[str, ...]
    """``NAMESPACE/NAME`` of each instance the wave moved to the target."""
    ready_at: str | None = None

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> Wave:
        return cls(
            int(status["number"]),
            status["startedAt"],
            tuple(status.get("instances") or ()),
            status.get("readyAt"),
        )

    def to_status(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "number": self.number,
            "startedAt": self.started_at,
            "instances": list(self.instances),
        }
        if self.ready_at:
            result["readyAt"] = self.ready_at
        return result


@dataclass(frozen=True)
class FailedInstance:
    instance: str
    reason: str
    message: str

    def to_status(self) -> dict[str, Any]:
        namespace, _, name = self.instance.partition("/")
        return {
            "namespace": namespace,
            "name": name,
            "reason": self.reason,
            "message": self.message[:300],
        }


@dataclass(frozen=True)
class InstanceView:
    """What the rollout reads of one instance."""

    key: str
    """``NAMESPACE/NAME``."""
    labels: Mapping[str, str] = field(default_factory=dict)
    pinned: bool = False
    """``spec.platformRef`` is set: the instance is outside every rollout."""
    digest: str = ""
    """The module digest its status says it is rendered with (for its current generation)."""
    ready: bool = False
    reason: str = ""
    message: str = ""

    @classmethod
    def of_instance(cls, instance: Mapping[str, Any]) -> InstanceView:
        metadata = instance["metadata"]
        status = instance.get("status") or {}
        current = status.get("observedGeneration") == metadata.get("generation")
        ready: Mapping[str, Any] = next(
            (c for c in status.get("conditions") or () if c.get("type") == "Ready"), {}
        )
        return cls(
            key=f"{metadata['namespace']}/{metadata['name']}",
            labels=metadata.get("labels") or {},
            pinned=bool((instance.get("spec") or {}).get("platformRef")),
            digest=(status.get("platformRefResolved") or {}).get("digest", "") if current else "",
            ready=current and ready.get("status") == "True",
            reason=str(ready.get("reason") or "NotReady"),
            message=str(ready.get("message") or "not reported on yet"),
        )


@dataclass(frozen=True)
class RolloutState:
    phase: str
    target: ModuleVersion
    previous: ModuleVersion
    started_at: str
    waves: tuple[Wave, ...] = ()
    finished_at: str | None = None
    updated: int = 0
    ready: int = 0
    failed: tuple[FailedInstance, ...] = ()
    failed_count: int = 0
    message: str = ""

    @classmethod
    def from_status(cls, status: Mapping[str, Any] | None) -> RolloutState | None:
        if not status or not status.get("target"):
            return None
        return cls(
            phase=status.get("phase") or PROGRESSING,
            target=ModuleVersion.from_status(status["target"]),
            previous=ModuleVersion.from_status(status.get("previous") or {}),
            started_at=status.get("startedAt") or timestamp(),
            waves=tuple(Wave.from_status(w) for w in status.get("waves") or ()),
            finished_at=status.get("finishedAt"),
            updated=int(status.get("updatedInstances") or 0),
            ready=int(status.get("readyInstances") or 0),
            failed=tuple(
                FailedInstance(f"{f['namespace']}/{f['name']}", f["reason"], f["message"])
                for f in status.get("failedInstances") or ()
            ),
            failed_count=int(status.get("failedCount") or 0),
            message=status.get("message") or "",
        )

    def to_status(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "phase": self.phase,
            "target": self.target.to_status(),
            "previous": self.previous.to_status(),
            "startedAt": self.started_at,
            "currentWave": self.waves[-1].number if self.waves else None,
            "waves": [w.to_status() for w in self.waves],
            "updatedInstances": self.updated,
            "readyInstances": self.ready,
            "failedCount": self.failed_count,
            "failedInstances": [f.to_status() for f in self.failed],
            "message": self.message,
        }
        if self.finished_at:
            result["finishedAt"] = self.finished_at
        return {k: v for k, v in result.items() if v is not None}

    @property
    def active(self) -> bool:
        return self.phase in ACTIVE_PHASES

    @functools.cached_property
    def moved(self) -> frozenset[str]:
        return frozenset(key for wave in self.waves for key in wave.instances)

    def renders_target(self, key: str) -> bool:
        """Whether the instance ``NAMESPACE/NAME`` renders with the target version (else the
        previous one)."""
        if self.phase == COMPLETE:
            return True
        if self.phase == ROLLED_BACK:
            return False
        return key in self.moved


PROGRESS_WRITE_SECONDS = 5.0
"""While a rollout's waves go on, its progress (the Transform's counts) is written at most this
often: every instance that moves or becomes Ready changes it, the waves and phases are written
as they happen."""

PROGRESS_FIELDS = ("updatedInstances", "readyInstances", "message")
"""The fields of ``status.rollout`` that move with every instance that becomes Ready."""


def progress_only(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """Whether a Progressing rollout's status ``after`` differs from ``before`` in its counts
    and message alone (no wave started or became Ready, no phase changed): a write that can
    wait a little and be gathered with the next ones."""
    if after.get("phase") != PROGRESSING or before.get("phase") != PROGRESSING:
        return False
    keys = (set(before) | set(after)) - set(PROGRESS_FIELDS)
    return all(before.get(k) == after.get(k) for k in keys)


def start(
    target: ModuleVersion, previous: ModuleVersion, now: datetime | None = None
) -> RolloutState:
    return RolloutState(
        phase=PROGRESSING,
        target=target,
        previous=previous,
        started_at=timestamp(now),
        message=f"rolling out {target.ref} in waves",
    )


def advance(
    spec: RolloutSpec,
    state: RolloutState,
    instances: Iterable[InstanceView],
    now: datetime,
) -> tuple[RolloutState, float | None]:
    """The rollout one step on, and the seconds after which to look again (None: when an
    instance changes). A wave starts once every instance of the one before is Ready on the
    target (and the bake time has passed); a wave not all Ready within the deadline fails the
    rollout, which then pauses or rolls back as ``spec.onFailure`` says."""
    if not state.active:
        return state, None
    views = {v.key: v for v in instances if not v.pinned}
    state = _counted(state, views)
    if state.phase == FAILED:
        return state, None  # ended by a new module version or an undo
    if spec.paused:
        return replace(state, phase=PAUSED, message="paused (spec.rollout.paused)"), None
    state = replace(state, phase=PROGRESSING)
    if not state.waves:
        return _next_wave(spec, state, views, now)
    wave = state.waves[-1]
    members = [views[k] for k in wave.instances if k in views]  # a deleted one is not waited for
    waiting = [v for v in members if not (v.ready and v.digest == state.target.digest)]
    if not waiting:
        ready_at = wave.ready_at or timestamp(now)
        if wave.ready_at is None:
            state = _with_last_wave(state, replace(wave, ready_at=ready_at))
        baked = (now - parse_timestamp(ready_at)).total_seconds()
        if baked < spec.bake_seconds:
            message = f"wave {wave.number} Ready; baking for {spec.bake_seconds} s"
            return replace(state, message=message), spec.bake_seconds - baked
        return _next_wave(spec, state, views, now)
    elapsed = (now - parse_timestamp(wave.started_at)).total_seconds()
    if elapsed < spec.wave_deadline_seconds:
        message = f"wave {wave.number}: {len(members) - len(waiting)}/{len(members)} Ready"
        return replace(state, message=message), spec.wave_deadline_seconds - elapsed + 0.5
    failed = tuple(
        FailedInstance(v.key, v.reason, v.message) for v in waiting[:FAILED_INSTANCES_SHOWN]
    )
    rolls_back = spec.on_failure == ROLLBACK
    message = (
        f"wave {wave.number} failed: {len(waiting)} of its {len(members)} instances not Ready "
        f"on {state.target.ref} within {spec.wave_deadline_seconds} s; "
        + (
            "every moved instance is back on the previous version"
            if rolls_back
            else "paused: the instances not moved stay on the previous version"
        )
    )
    return (
        replace(
            state,
            phase=ROLLED_BACK if rolls_back else FAILED,
            failed=failed,
            failed_count=len(waiting),
            finished_at=timestamp(now) if rolls_back else None,
            message=message,
        ),
        None,
    )


def _counted(state: RolloutState, views: Mapping[str, InstanceView]) -> RolloutState:
    on_target = [v for v in views.values() if v.digest == state.target.digest]
    return replace(state, updated=len(on_target), ready=sum(1 for v in on_target if v.ready))


def _with_last_wave(state: RolloutState, wave: Wave) -> RolloutState:
    return replace(state, waves=(*state.waves[:-1], wave))


def _next_wave(
    spec: RolloutSpec,
    state: RolloutState,
    views: Mapping[str, InstanceView],
    now: datetime,
) -> tuple[RolloutState, float | None]:
    """The next wave: the canary first (the instances its selector picks, else its count in
    name order), then ``waveSize`` at a time in name order; none left completes the rollout."""
    moved = state.moved
    remaining = sorted(k for k in views if k not in moved)
    if not remaining:
        return (
            replace(
                state,
                phase=COMPLETE,
                finished_at=timestamp(now),
                message=f"every instance is on {state.target.ref}",
            ),
            None,
        )
    total = len(views)
    if not state.waves:
        if spec.canary_selector:
            chosen = [
                k
                for k in remaining
                if all(views[k].labels.get(key) == v for key, v in spec.canary_selector.items())
            ] or remaining[: count_of(spec.canary_instances, total)]
        else:
            chosen = remaining[: count_of(spec.canary_instances, total)]
    else:
        chosen = remaining[: count_of(spec.wave_size, total)]
    number = len(state.waves)
    wave = Wave(number, timestamp(now), tuple(chosen))
    message = f"wave {number} ({'canary, ' if number == 0 else ''}{len(chosen)} instances) started"
    return replace(state, waves=(*state.waves, wave), message=message), float(
        spec.wave_deadline_seconds
    )
