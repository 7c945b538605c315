"""The Transform controller's part of a rollout: notices a module change, starts the rollout
(or ends one that an undo or a change of strategy makes moot), finds the previous module again
(in memory, else from the ``cueRef`` the status kept), and takes the step
:func:`pequod.api.rollout.advance` computes from the instances' statuses. Also counts the
instances on each module version for ``status.moduleVersions``."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import structlog

from pequod.api.rollout import (
    ACTIVE_PHASES,
    COMPLETE,
    ROLLED_BACK,
    InstanceView,
    ModuleVersion,
    RolloutSpec,
    RolloutState,
    advance,
    start,
)
from pequod.clock import timestamp, utc_now
from pequod.delivery.reference import ModuleReference
from pequod.delivery.resolver import ModuleResolver
from pequod.module.source import ModuleError, ModuleSource
from pequod.operator.serving import ServedApi

logger = structlog.get_logger(__name__)

INSTANCES_UNKNOWN_RETRY_SECONDS = 0.5


@dataclass(frozen=True)
class RolloutStep:
    state: RolloutState | None
    previous_module: ModuleSource | None
    requeue_after: float | None
    started: bool = False


class Rollouts:
    def __init__(self, resolver: ModuleResolver) -> None:
        self.resolver = resolver
        self._previous: dict[str, ModuleSource] = {}

    async def step(
        self,
        transform: dict[str, Any],
        status: dict[str, Any],
        module: ModuleSource,
        served: ServedApi | None,
    ) -> RolloutStep:
        name = transform["metadata"]["name"]
        spec = RolloutSpec.of_transform(transform)
        state = RolloutState.from_status(status.get("rollout"))
        served_digest = (status.get("resolvedCueRef") or {}).get("digest")
        holds_previous = state is not None and state.phase in (*ACTIVE_PHASES, ROLLED_BACK)
        started = False
        if state is not None and state.target.digest == module.digest:
            pass  # the rollout of this very version, whatever the cache says was served
        elif served_digest and served_digest != module.digest:
            if state is not None and holds_previous and state.previous.digest == module.digest:
                # An undo: the previous version is the Transform's again, for every instance
                # at once (those never moved are on it already).
                state = _ended(state, f"undone: every instance is back on {module.reference}")
            elif spec.in_waves:
                if state is not None and holds_previous:
                    previous = state.previous  # the last version every instance was on
                else:
                    previous = ModuleVersion(
                        (status.get("resolvedCueRef") or {}).get("ref", ""),
                        served_digest,
                        status.get("servedCueRef"),
                    )
                    if served is not None and served.kind.module.digest == served_digest:
                        self._previous[name] = served.kind.module
                target = ModuleVersion(module.reference, module.digest, transform["spec"]["cueRef"])
                state = start(target, previous)
                started = True
                logger.info(
                    "rollout started",
                    transform=name,
                    target=module.reference,
                    previous=previous.ref,
                )
            elif state is not None and holds_previous:
                state = _ended(state, f"{module.reference} served to every instance at once")
        elif state is not None and state.active and not spec.in_waves:
            state = _ended(state, "spec.rollout.strategy is AllAtOnce: every instance moved")
        if state is None or state.phase not in (*ACTIVE_PHASES, ROLLED_BACK):
            self._previous.pop(name, None)
            return RolloutStep(state, None, None, started)
        previous_module = await self._previous_module(name, state.previous)
        if served is None or served.instance_count is None:
            # Not every instance is known yet (the kind's informer has not listed, as after a
            # restart): what the status says stands, and the step waits for the list.
            return RolloutStep(state, previous_module, INSTANCES_UNKNOWN_RETRY_SECONDS, started)
        views = [InstanceView.of_instance(o) for o in served.informer.list()]
        state, requeue_after = advance(spec, state, views, utc_now())
        return RolloutStep(state, previous_module, requeue_after, started)

    def forget(self, transform: str) -> None:
        self._previous.pop(transform, None)

    async def _previous_module(
        self, transform: str, previous: ModuleVersion
    ) -> ModuleSource | None:
        """The module of the previous version: the one served before the change, else resolved
        again from its ``cueRef`` (after a restart) when its digest is still the same; None
        when it cannot be had (the instances that would render with it render with the
        target)."""
        known = self._previous.get(transform)
        if known is not None and known.digest == previous.digest:
            return known
        if not previous.cue_ref:
            return None
        try:
            module = await self.resolver.resolve(ModuleReference.from_spec(dict(previous.cue_ref)))
        except ModuleError as error:
            logger.warning("previous module unavailable", transform=transform, error=str(error))
            return None
        if module.digest != previous.digest:
            logger.warning(
                "previous module changed since it was served",
                transform=transform,
                expected=previous.digest,
                found=module.digest,
            )
            return None
        self._previous[transform] = module
        return module


def _ended(state: RolloutState, message: str) -> RolloutState:
    return replace(state, phase=COMPLETE, finished_at=timestamp(), message=message)
