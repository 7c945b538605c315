"""Checks the syntax of CEL readiness expressions (they are evaluated later, by the executor)."""

from __future__ import annotations

import functools

import celpy
from celpy.celparser import CELParseError


@functools.cache
def _environment() -> celpy.Environment:
    return celpy.Environment()


def cel_syntax_error(expression: str) -> str | None:
    """``None`` when ``expression`` parses, otherwise the parser's message."""
    try:
        _environment().compile(expression)
    except CELParseError as error:
        return " ".join(str(error).split())
    return None
