"""The plural a generated kind is served under (its CRD's name), and the check of
``#Metadata.plural``."""

from __future__ import annotations

import pytest

from pequod.crdgen.crd import ApiDefinition, build_crd
from pequod.crdgen.naming import PLURAL_OVERRIDES, plural_of, singular_of
from pequod.module.metadata import plural_problem


@pytest.mark.parametrize(
    ("kind", "plural"),
    [
        # Kinds that already read as plurals keep their form.
        ("AccShapes", "accshapes"),
        ("Endpoints", "endpoints"),
        ("Data", "data"),
        ("Metrics", "metrics"),
        ("Series", "series"),
        # Singulars ending in s are not mistaken for plurals.
        ("Status", "statuses"),
        ("Ingress", "ingresses"),
        ("Alias", "aliases"),
        ("EventBus", "eventbuses"),
        ("Analysis", "analyses"),
        # The common cases, and the embedded modules' kinds (their CRDs must not move).
        ("Policy", "policies"),
        ("Proxy", "proxies"),
        ("Gateway", "gateways"),
        ("Box", "boxes"),
        ("Database", "databases"),
        ("WebService", "webservices"),
        ("Webservice", "webservices"),
        ("Person", "people"),
        # Only the last word is inflected; acronyms and digits are words.
        ("DNSRecord", "dnsrecords"),
        ("S3Bucket", "s3buckets"),
        ("ChildPolicy", "childpolicies"),
        # The override table.
        ("ResourceQuota", "resourcequotas"),
        ("Virus", "viruses"),
    ],
)
def test_plural_of_a_kind(kind: str, plural: str) -> None:
    assert plural_of(kind) == plural


def test_every_override_is_needed() -> None:
    """An override the library has learnt is dead weight: drop it."""
    from pluralizer import Pluralizer

    for word, plural in PLURAL_OVERRIDES.items():
        assert Pluralizer().plural(word) != plural, word  # type: ignore[no-untyped-call]


def test_singular_is_the_lower_case_kind() -> None:
    assert singular_of("AccShapes") == "accshapes"
    assert singular_of("WebService") == "webservice"


def test_an_explicit_plural_names_the_crd() -> None:
    definition = ApiDefinition(name="acc-shapes", plural_name="shapesets")
    crd = build_crd(definition, {"type": "object", "properties": {}})
    assert crd["metadata"]["name"] == "shapesets.platform.pequod.io"
    names = crd["spec"]["names"]
    assert (names["kind"], names["plural"], names["singular"]) == (
        "AccShapes",
        "shapesets",
        "accshapes",
    )


@pytest.mark.parametrize("plural", ["accshapes", "acc-shapes", "shapes2", "a" * 63])
def test_valid_plurals(plural: str) -> None:
    assert plural_problem(plural) is None


@pytest.mark.parametrize(
    ("plural", "problem"),
    [
        ("AccShapes", "not a lower-case DNS label"),
        ("acc_shapes", "not a lower-case DNS label"),
        ("acc.shapes", "not a lower-case DNS label"),
        ("-shapes", "not a lower-case DNS label"),
        ("shapes-", "not a lower-case DNS label"),
        ("2shapes", "not a lower-case DNS label"),
        ("", "not a lower-case DNS label"),
        ("a" * 64, "longer than 63 characters"),
        (5, "must be a string, not 5"),
        (["shapes"], "must be a string"),
    ],
)
def test_invalid_plurals(plural: object, problem: str) -> None:
    found = plural_problem(plural)
    assert found is not None
    assert problem in found
