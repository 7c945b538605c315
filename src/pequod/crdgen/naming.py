"""Kubernetes names for a generated API: kind, plural, singular.

The plural of a kind is its last CamelCase word made plural by the ``pluralizer`` library (the
rules of the JavaScript ``pluralize``, which, like kubebuilder's flect, keep plurals plural),
lower-cased and joined to the words before it: ``WebService`` → ``webservices``. Those rules
keep a word that already reads as a plural (``AccShapes`` → ``accshapes``, ``Endpoints`` →
``endpoints``, ``Data`` → ``data``) and know the singulars ending in s (``Status`` →
``statuses``, ``Ingress`` → ``ingresses``). :data:`PLURAL_OVERRIDES` corrects the few words
they get wrong; a module whose kind they still get wrong names its plural in
``#Metadata.plural``.
"""

from __future__ import annotations

import re

from pluralizer import Pluralizer

_WORD = re.compile(r"[A-Za-z0-9]+")
# "AccShapes" → "Acc", "Shapes"; "DNSRecord" → "DNS", "Record"; "S3Bucket" → "S3", "Bucket".
_CAMEL_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

PLURAL_OVERRIDES: dict[str, str] = {
    # The rules give the Latin "viri"; English, and any user, says "viruses".
    "virus": "viruses",
}
"""Last words whose plural the rules get wrong, lower-case: word → plural."""

_PLURALIZER = Pluralizer()  # type: ignore[no-untyped-call]  # its __init__ has no annotations


def camel_case(name: str) -> str:
    """``web-service`` → ``WebService``; an already CamelCase name is kept as it is."""
    words = _WORD.findall(name)
    return "".join(w[:1].upper() + w[1:] for w in words)


def plural_of(kind: str) -> str:
    """The lower-case plural of a kind: its last word made plural, see the module's doc."""
    words = _CAMEL_WORD.findall(kind)
    if not words or not kind.endswith(words[-1]):  # not CamelCase: the whole name is a word
        words = [kind]
    last = words[-1].lower()
    head = kind[: len(kind) - len(last)].lower()
    return head + (PLURAL_OVERRIDES.get(last) or _PLURALIZER.plural(last))


def singular_of(kind: str) -> str:
    """The lower-case singular: the kind itself, as Kubernetes defaults it (a kind names one
    object, so ``AccShapes``'s singular is ``accshapes``, like the built-in ``Endpoints``)."""
    return kind.lower()
