"""Adoption: which existing objects an instance may take over, and how. The Transform lists
the strategies its instances may ask for (``spec.adoption.allowedStrategies``); an instance
asks with the annotation ``pequod.io/adopt``. What both allow is written on the graph's nodes
(``Node.adoption``), where the executor reads it."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pequod.api.names import ADOPT_ANNOTATION
from pequod.graph.model import ADOPTION_STRATEGIES


class AdoptionError(Exception):
    """An adoption the instance may not have: ``reason`` is its condition's."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(message)


_NODE_ID = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class AdoptionRequest:
    """What an instance's annotation asks for: one strategy for every node (``every``), or a
    strategy per node id (``nodes``). Empty: no adoption."""

    every: str = ""
    nodes: tuple[tuple[str, str], ...] = ()

    @property
    def empty(self) -> bool:
        return not self.every and not self.nodes

    def strategies(self) -> set[str]:
        return {self.every} if self.every else {s for _, s in self.nodes}


NO_ADOPTION = AdoptionRequest()


def requested(instance: Mapping[str, Any]) -> AdoptionRequest:
    """The instance's ``pequod.io/adopt`` annotation, parsed; raises :class:`AdoptionError`
    (reason ``InvalidAdoption``) for a value of neither form."""
    annotations = instance.get("metadata", {}).get("annotations") or {}
    value = str(annotations.get(ADOPT_ANNOTATION, "")).strip()
    if not value:
        return NO_ADOPTION
    strategies = ", ".join(ADOPTION_STRATEGIES)
    if "=" not in value:
        if value not in ADOPTION_STRATEGIES:
            raise AdoptionError(
                "InvalidAdoption",
                f"annotation {ADOPT_ANNOTATION}: {value!r} is not a strategy ({strategies}) "
                "nor a list of NODE=STRATEGY",
            )
        return AdoptionRequest(every=value)
    nodes: dict[str, str] = {}
    for item in value.split(","):
        node_id, _, strategy = (part.strip() for part in item.partition("="))
        if not _NODE_ID.match(node_id) or strategy not in ADOPTION_STRATEGIES:
            raise AdoptionError(
                "InvalidAdoption",
                f"annotation {ADOPT_ANNOTATION}: {item.strip()!r} is not NODE=STRATEGY "
                f"(a node id, and one of {strategies})",
            )
        if nodes.get(node_id, strategy) != strategy:
            raise AdoptionError(
                "InvalidAdoption",
                f"annotation {ADOPT_ANNOTATION}: node {node_id!r} is given two strategies",
            )
        nodes[node_id] = strategy
    return AdoptionRequest(nodes=tuple(sorted(nodes.items())))


def check_allowed(request: AdoptionRequest, allowed: Iterable[str], transform: str) -> None:
    """Raises :class:`AdoptionError` (reason ``AdoptionNotAllowed``) when the request asks for
    a strategy the Transform does not allow."""
    allowed = tuple(allowed)
    refused = sorted(request.strategies() - set(allowed))
    if refused:
        listed = ", ".join(allowed) or "none"
        raise AdoptionError(
            "AdoptionNotAllowed",
            f"annotation {ADOPT_ANNOTATION} asks for {', '.join(refused)}, which Transform "
            f"{transform} does not allow (spec.adoption.allowedStrategies: {listed})",
        )


def per_node(request: AdoptionRequest, node_ids: Iterable[str]) -> dict[str, str]:
    """The strategy of each node the request adopts; raises :class:`AdoptionError` (reason
    ``InvalidAdoption``) when it names a node the render does not have."""
    node_ids = list(node_ids)
    if request.every:
        return dict.fromkeys(node_ids, request.every)
    unknown = sorted(n for n, _ in request.nodes if n not in node_ids)
    if unknown:
        raise AdoptionError(
            "InvalidAdoption",
            f"annotation {ADOPT_ANNOTATION} names node {', '.join(unknown)}, which the "
            f"render does not have (its nodes: {', '.join(node_ids)})",
        )
    return dict(request.nodes)
