"""Checks the syntax of CEL readiness expressions (they are evaluated later, by the executor)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import celpy


@functools.cache
def _environment() -> celpy.Environment:
    # cel-python is loaded with the first CEL expression: modules without one never need it.
    import celpy

    return celpy.Environment()


def cel_syntax_error(expression: str) -> str | None:
    """``None`` when ``expression`` parses, otherwise the parser's message."""
    from celpy.celparser import CELParseError

    try:
        _environment().compile(expression)
    except CELParseError as error:
        return " ".join(str(error).split())
    return None
