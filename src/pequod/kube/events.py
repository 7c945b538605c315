"""Records Kubernetes Events (core/v1) about the objects a controller reconciles."""

from __future__ import annotations

import uuid
from typing import Any

import structlog

from pequod.clock import timestamp as now
from pequod.kube.client import ApiError, KubeClient
from pequod.kube.resources import EVENTS

logger = structlog.get_logger(__name__)


class EventRecorder:
    """Writes Events as ``component`` (their source and reporting component)."""

    def __init__(self, client: KubeClient, component: str) -> None:
        self._client = client
        self.component = component

    async def record(self, obj: dict[str, Any], event_type: str, reason: str, message: str) -> None:
        """Writes an Event; failures are logged, never raised (events are best effort)."""
        metadata = obj["metadata"]
        namespace = metadata.get("namespace") or "default"
        timestamp = now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{metadata['name']}.{uuid.uuid4().hex[:12]}",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": metadata["name"],
                "namespace": metadata.get("namespace"),
                "uid": metadata.get("uid"),
                "resourceVersion": metadata.get("resourceVersion"),
            },
            "type": event_type,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.component,
            "firstTimestamp": timestamp,
            "lastTimestamp": timestamp,
            "count": 1,
        }
        try:
            await self._client.create(EVENTS, event)
        except ApiError as error:
            logger.warning("could not record event", reason=reason, error=str(error))
