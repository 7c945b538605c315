"""Leader election on a coordination.k8s.io Lease, after client-go's leaderelection.

One replica holds the Lease and renews it; the others wait until it expires (its holder
stopped renewing) and take it over. Updates carry the Lease's resourceVersion, so two
candidates can never both believe they won. A holder that cannot renew within the renew
deadline gives up leadership (the operator then exits, and restarts as a candidate); a
holder that stops cleanly releases the Lease so a standby takes over at once."""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import dataclass
from typing import Any

import structlog

from pequod.clock import utc_now
from pequod.kube.client import API_OR_TRANSPORT_ERRORS, ApiError, KubeClient
from pequod.kube.resources import ResourceType
from pequod.metrics import LEASE_UPDATES

logger = structlog.get_logger(__name__)

LEASES = ResourceType("coordination.k8s.io", "v1", "Lease", "leases", True)


@dataclass(frozen=True)
class LeaseSettings:
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


def _format(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    for layout in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.datetime.strptime(text, layout).replace(tzinfo=datetime.UTC)
        except ValueError:
            continue
    return None


class LeaderElector:
    def __init__(self, client: KubeClient, settings: LeaseSettings) -> None:
        self.client = client
        self.settings = settings
        self.is_leader = False

    async def acquire(self) -> None:
        """Returns once this candidate holds the Lease."""
        announced = False
        while True:
            try:
                if await self._try_acquire_or_renew():
                    self.is_leader = True
                    logger.info("became leader", lease=self._where, identity=self.settings.identity)
                    return
            except API_OR_TRANSPORT_ERRORS as error:
                logger.warning("leader election attempt failed", error=str(error))
            if not announced:
                logger.info("waiting for the leader lease", lease=self._where)
                announced = True
            await asyncio.sleep(self.settings.retry_period)

    async def hold(self) -> None:
        """Renews the Lease every retry period; returns when leadership is lost (no renewal
        within the renew deadline, or another holder)."""
        last_renewal = asyncio.get_running_loop().time()
        while True:
            await asyncio.sleep(self.settings.retry_period)
            try:
                if await self._try_acquire_or_renew():
                    last_renewal = asyncio.get_running_loop().time()
                    continue
                logger.error("leader lease taken by another holder", lease=self._where)
                break
            except API_OR_TRANSPORT_ERRORS as error:
                logger.warning("lease renewal failed", error=str(error))
            if asyncio.get_running_loop().time() - last_renewal > self.settings.renew_deadline:
                logger.error("lease not renewed within the renew deadline", lease=self._where)
                break
        self.is_leader = False

    async def release(self) -> None:
        """Gives the Lease up (on a clean stop) so a standby need not wait for it to expire."""
        if not self.is_leader:
            return
        self.is_leader = False
        try:
            lease = await self.client.get(LEASES, self.settings.name, self.settings.namespace)
            if lease is None or lease["spec"].get("holderIdentity") != self.settings.identity:
                return
            await self.client.merge_patch(
                LEASES,
                self.settings.name,
                self.settings.namespace,
                {
                    "metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]},
                    "spec": {
                        "holderIdentity": None,
                        "leaseDurationSeconds": 1,
                        "renewTime": _format(utc_now()),
                    },
                },
            )
            logger.info("leader lease released", lease=self._where)
        except API_OR_TRANSPORT_ERRORS as error:
            logger.warning("could not release the leader lease", error=str(error))

    @property
    def _where(self) -> str:
        return f"{self.settings.namespace}/{self.settings.name}"

    async def _try_acquire_or_renew(self) -> bool:
        settings = self.settings
        now = utc_now()
        spec: dict[str, Any] = {
            "holderIdentity": settings.identity,
            "leaseDurationSeconds": int(settings.lease_duration),
            "renewTime": _format(now),
        }
        lease = await self.client.get(LEASES, settings.name, settings.namespace)
        if lease is None:
            try:
                await self.client.create(
                    LEASES,
                    {
                        "apiVersion": "coordination.k8s.io/v1",
                        "kind": "Lease",
                        "metadata": {"name": settings.name, "namespace": settings.namespace},
                        "spec": {**spec, "acquireTime": _format(now), "leaseTransitions": 0},
                    },
                )
            except ApiError as error:
                if error.status == 409:  # another candidate created it first
                    return False
                raise
            return True
        current = lease.get("spec") or {}
        holder = current.get("holderIdentity")
        if holder and holder != settings.identity:
            renewed = _parse(current.get("renewTime")) or _parse(current.get("acquireTime"))
            duration = float(current.get("leaseDurationSeconds") or settings.lease_duration)
            if renewed is not None and (now - renewed).total_seconds() < duration:
                return False  # held, and not expired
        if holder != settings.identity:
            spec["acquireTime"] = _format(now)
            spec["leaseTransitions"] = int(current.get("leaseTransitions") or 0) + 1
        try:
            LEASE_UPDATES.inc()
            await self.client.merge_patch(
                LEASES,
                settings.name,
                settings.namespace,
                {
                    "metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]},
                    "spec": spec,
                },
            )
        except ApiError as error:
            if error.status == 409:  # someone else updated it since we read it
                return False
            raise
        return True
