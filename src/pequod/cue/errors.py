"""Makes cue's diagnostics about a render readable for the person who wrote the input."""

from __future__ import annotations

import re
from itertools import groupby

from pequod.cue.diagnostics import Diagnostic, SourcePosition

# Files that are Pequod's own plumbing (the instance on standard input, the -e expression).
_INTERNAL_FILES = ("-", "--expression")
_CONFLICT = re.compile(r"^conflicting values (?P<allowed>.+) and (?P<given>.+)$")


def tidy(
    diagnostics: list[Diagnostic], *, strip_prefixes: tuple[str, ...] = ()
) -> list[Diagnostic]:
    """One clear message per field: duplicates and internal positions dropped, the failed
    branches of a disjunction folded into one line, ``input.spec.port`` shown as ``spec.port``."""
    cleaned: list[Diagnostic] = []
    seen: set[tuple[str, str]] = set()
    for diagnostic in diagnostics:
        path = diagnostic.path
        for prefix in strip_prefixes:
            if path.startswith(prefix):
                path = path[len(prefix) :]
                break
        message = diagnostic.message
        if message.startswith("incomplete value"):
            message = f"a required value is missing ({message})"
        if (path, message) in seen:
            continue
        seen.add((path, message))
        positions: tuple[SourcePosition, ...] = tuple(
            p for p in diagnostic.positions if p.file not in _INTERNAL_FILES
        )
        cleaned.append(Diagnostic(message, path, positions))
    tidied: list[Diagnostic] = []
    for _, group in groupby(cleaned, key=lambda d: d.path):
        tidied.extend(_fold_disjunction(list(group)))
    return tidied


def _fold_disjunction(group: list[Diagnostic]) -> list[Diagnostic]:
    if len(group) == 1:
        return group
    specific = [d for d in group if "errors in empty disjunction" not in d.message]
    group = specific or group
    conflicts = [d for d in group if _CONFLICT.match(d.message)]
    others = [d for d in group if not _CONFLICT.match(d.message)]
    if others:
        return others
    matches = [m for d in conflicts if (m := _CONFLICT.match(d.message))]
    given = {m["given"] for m in matches}
    if len(given) == 1 and len(matches) > 1:
        allowed = ", ".join(m["allowed"] for m in matches)
        positions = tuple(p for d in conflicts for p in d.positions[:1])
        message = f"{given.pop()} is not allowed (allowed: {allowed})"
        return [Diagnostic(message, conflicts[0].path, positions)]
    return conflicts
