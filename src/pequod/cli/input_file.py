"""Reads an instance from a YAML or JSON file and finds where a field path is written in it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from pequod.cue.diagnostics import SourcePosition

_PATH_PART = re.compile(r"[^.\[\]]+|\[\d+\]")


class InputFileError(Exception):
    pass


def read_instance_document(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as error:
        raise InputFileError(f"{path}: {error.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise InputFileError(f"{where}: not valid YAML: {error}") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise InputFileError(f"{path}: expected a mapping with metadata and spec")
    if "spec" not in document and "metadata" not in document:
        document = {"spec": document}  # a bare spec
    return document


def position_of(path: Path, field_path: str) -> SourcePosition | None:
    """Where ``spec.ports[0].number`` (or ``spec.ports.0.number``) is written in the file."""
    try:
        node: Any = yaml.compose(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    if node is not None and isinstance(node, yaml.MappingNode):
        keys = {k.value for k, _ in node.value}
        if "spec" not in keys and "metadata" not in keys and field_path.startswith("spec"):
            field_path = field_path.removeprefix("spec").lstrip(".")
    found = node
    for part in _PATH_PART.findall(field_path):
        index = part.strip("[]")
        if isinstance(found, yaml.MappingNode):
            match = [value for key, value in found.value if key.value == part]
            if not match:
                break
            found = match[0]
        elif isinstance(found, yaml.SequenceNode) and index.isdigit():
            if int(index) >= len(found.value):
                break
            found = found.value[int(index)]
        else:
            break
    if found is None:
        return None
    mark = found.start_mark
    return SourcePosition(str(path), mark.line + 1, mark.column + 1)
