"""Kubernetes naming of generated APIs, the render hash and the render cache."""

from __future__ import annotations

import pytest

from pequod.crdgen.crd import ApiDefinition, build_crd
from pequod.crdgen.naming import camel_case, plural_of
from pequod.render.cache import RenderCache
from pequod.render.instance import Instance, render_hash


@pytest.mark.parametrize(
    ("name", "kind"),
    [("webservice", "Webservice"), ("web-service", "WebService"), ("Database", "Database")],
)
def test_kind_from_name(name: str, kind: str) -> None:
    assert camel_case(name) == kind


@pytest.mark.parametrize(
    ("kind", "plural"),
    [
        ("WebService", "webservices"),
        ("Policy", "policies"),
        ("Gateway", "gateways"),
        ("Box", "boxes"),
    ],
)
def test_plural(kind: str, plural: str) -> None:
    assert plural_of(kind) == plural


def test_crd_names_columns_and_reserved_platform_ref() -> None:
    definition = ApiDefinition(
        name="webservice",
        kind="WebService",
        short_names=("ws",),
        printer_columns=({"name": "Image", "jsonPath": ".spec.image"},),
    )
    crd = build_crd(definition, {"type": "object", "properties": {"image": {"type": "string"}}})
    assert crd["metadata"]["name"] == "webservices.platform.pequod.io"
    names = crd["spec"]["names"]
    assert (names["plural"], names["singular"], names["shortNames"]) == (
        "webservices",
        "webservice",
        ["ws"],
    )
    assert names["categories"] == ["pequod"]
    version = crd["spec"]["versions"][0]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Ready",
        "Phase",
        "Image",
        "Age",
    ]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert set(spec["properties"]) == {"image", "platformRef"}
    assert version["subresources"] == {"status": {}}


def test_render_hash_changes_with_module_input_and_policies() -> None:
    instance = Instance("a", "ns", {"port": 1})
    base = render_hash("sha256:m", instance)
    assert base == render_hash("sha256:m", Instance("a", "ns", {"port": 1}))
    assert base != render_hash("sha256:other", instance)
    assert base != render_hash("sha256:m", Instance("a", "ns", {"port": 2}))
    assert base != render_hash("sha256:m", instance, ("sha256:policy",))


def test_render_cache_is_bounded_lru() -> None:
    cache: RenderCache[int] = RenderCache(max_entries=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert cache.get("b") is None
    assert (cache.get("a"), cache.get("c")) == (1, 3)
    assert (cache.hits, cache.misses) == (3, 1)


def test_instance_from_kubernetes_object_drops_platform_ref() -> None:
    instance = Instance.from_object(
        {
            "metadata": {"name": "x", "namespace": "y", "uid": "u"},
            "spec": {"a": 1, "platformRef": {}},
        }
    )
    assert instance.render_input() == {
        "metadata": {"name": "x", "namespace": "y"},
        "spec": {"a": 1},
    }
