"""The adoption an instance asks for (annotation pequod.io/adopt) and what its Transform
allows: parsed, checked, and spread over the rendered nodes."""

from __future__ import annotations

from typing import Any

import pytest

from pequod.api.adoption import (
    AdoptionError,
    AdoptionRequest,
    check_allowed,
    per_node,
    requested,
)
from pequod.executor.adopt import refusal
from pequod.graph.model import Node


def instance(value: str | None) -> dict[str, Any]:
    annotations = {} if value is None else {"pequod.io/adopt": value}
    return {"metadata": {"name": "web", "annotations": annotations}}


def test_one_strategy_for_every_node() -> None:
    request = requested(instance("TakeOwnership"))
    assert request == AdoptionRequest(every="TakeOwnership")
    assert per_node(request, ["deployment", "service"]) == {
        "deployment": "TakeOwnership",
        "service": "TakeOwnership",
    }


def test_a_strategy_per_node() -> None:
    request = requested(instance(" deployment=TakeOwnership, config=Observe "))
    assert per_node(request, ["deployment", "service", "config"]) == {
        "config": "Observe",
        "deployment": "TakeOwnership",
    }
    assert request.strategies() == {"Observe", "TakeOwnership"}


def test_no_annotation_asks_for_nothing() -> None:
    assert requested(instance(None)).empty
    assert requested(instance("")).empty


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("takeownership", "is not a strategy"),
        ("Adopt", "is not a strategy"),
        ("deployment=Own", "'deployment=Own' is not NODE=STRATEGY"),
        ("Deployment=Observe", "is not NODE=STRATEGY"),
        ("deployment=Observe,", "'' is not NODE=STRATEGY"),
        ("a=Observe,a=TakeOwnership", "node 'a' is given two strategies"),
    ],
)
def test_a_malformed_annotation_is_refused_with_what_is_wrong(value: str, says: str) -> None:
    with pytest.raises(AdoptionError) as raised:
        requested(instance(value))
    assert raised.value.reason == "InvalidAdoption"
    assert says in raised.value.message


def test_a_strategy_the_transform_does_not_allow_is_refused() -> None:
    request = requested(instance("deployment=TakeOwnership,config=Observe"))
    check_allowed(request, ["TakeOwnership", "Observe"], "web")
    with pytest.raises(AdoptionError) as raised:
        check_allowed(request, ["TakeOwnership"], "web")
    assert raised.value.reason == "AdoptionNotAllowed"
    assert "asks for Observe, which Transform web does not allow" in raised.value.message
    with pytest.raises(AdoptionError, match="allowedStrategies: none"):
        check_allowed(request, [], "web")


def test_a_node_the_render_does_not_have_is_refused() -> None:
    request = requested(instance("deploy=TakeOwnership"))
    with pytest.raises(AdoptionError) as raised:
        per_node(request, ["deployment", "service"])
    assert raised.value.reason == "InvalidAdoption"
    assert "names node deploy, which the render does not have" in raised.value.message


def labelled(labels: dict[str, str]) -> dict[str, Any]:
    return {"kind": "Service", "metadata": {"name": "web", "labels": labels}}


def test_only_an_object_of_no_instance_is_taken_over_and_only_when_asked() -> None:
    node = Node("service", {"kind": "Service"}, adoption="TakeOwnership")
    plain = Node("service", {"kind": "Service"})
    helm = labelled({"app.kubernetes.io/managed-by": "Helm"})
    assert refusal(helm, node) is None
    assert "unless the instance asks" in (refusal(helm, plain) or "")
    other = labelled(
        {
            "app.kubernetes.io/managed-by": "pequod",
            "platform.pequod.io/instance-kind": "WebService",
            "platform.pequod.io/instance-name": "other",
            "platform.pequod.io/instance-uid": "u-2",
        }
    )
    problem = refusal(other, node) or ""
    assert "it belongs to WebService other (uid u-2)" in problem
    assert "never takes over another instance's object" in problem


def test_the_node_schema_keeps_adoption_out_of_modules_hands() -> None:
    from pequod.graph.shape import MODULE_NODE_SCHEMA, NODE_SCHEMA

    assert "adoption" in NODE_SCHEMA["properties"]
    assert "adoption" not in MODULE_NODE_SCHEMA["properties"]
    node = Node.from_dict({"id": "a", "object": {}, "adoption": "Observe"})
    assert node.observe_only
    assert node.to_dict()["adoption"] == "Observe"
    assert "adoption" not in Node.from_dict({"id": "a", "object": {}}).to_dict()
