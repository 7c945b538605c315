"""Structured errors: a message, the field path it concerns and where in the CUE source it is."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# "    ./webservice.cue:12:5" or "    /abs/path/x.cue:3:1" or "    -:1:17" (standard input)
_POSITION = re.compile(r"^\s+(?P<file>\S+?):(?P<line>\d+):(?P<column>\d+)$")
# "spec.port: invalid value 70000 (out of bound <=65535):" -> path "spec.port"
_PATH_PREFIX = re.compile(r"^(?P<path>[#\w.\[\]\"?!-]+(?:\.[#\w\[\]\"?!-]+)*): (?P<rest>.+)$")


@dataclass(frozen=True)
class SourcePosition:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Diagnostic:
    """One problem: what is wrong, at which field path, and where in the source."""

    message: str
    path: str = ""
    positions: tuple[SourcePosition, ...] = field(default=())

    def __str__(self) -> str:
        where = f"{self.positions[0]}: " if self.positions else ""
        what = f"{self.path}: " if self.path else ""
        return f"{where}{what}{self.message}"


def parse_cue_errors(text: str) -> list[Diagnostic]:
    """Splits ``cue``'s stderr into diagnostics (one per error, with its source positions)."""
    diagnostics: list[Diagnostic] = []
    message_lines: list[str] = []
    positions: list[SourcePosition] = []

    def flush() -> None:
        if not message_lines:
            return
        message = " ".join(line.strip() for line in message_lines).rstrip(":").strip()
        path = ""
        match = _PATH_PREFIX.match(message)
        if match and " " not in match.group("path"):
            path, message = match.group("path"), match.group("rest")
        diagnostics.append(Diagnostic(message, path, tuple(positions)))
        message_lines.clear()
        positions.clear()

    for line in text.splitlines():
        if not line.strip():
            continue
        position = _POSITION.match(line)
        if position:
            positions.append(
                SourcePosition(
                    _clean_file(position.group("file")),
                    int(position.group("line")),
                    int(position.group("column")),
                )
            )
            continue
        if positions or not line.startswith((" ", "\t")):
            flush()
        message_lines.append(line)
    flush()
    return diagnostics


def _clean_file(name: str) -> str:
    return name.removeprefix("./")
