"""Kubernetes names for a generated API: kind, plural, singular."""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-z0-9]+")


def camel_case(name: str) -> str:
    """``web-service`` → ``WebService``; an already CamelCase name is kept as it is."""
    words = _WORD.findall(name)
    return "".join(w[:1].upper() + w[1:] for w in words)


def plural_of(kind: str) -> str:
    """The lower-case plural of a kind, by the English rules Kubernetes uses for built-ins."""
    singular = kind.lower()
    if singular.endswith(("s", "x", "z", "ch", "sh")):
        return singular + "es"
    if singular.endswith("y") and singular[-2:-1] not in ("a", "e", "i", "o", "u"):
        return singular[:-1] + "ies"
    return singular + "s"
