"""Finds the directory of built tools and the path of one binary."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pequod.toolchain.pins import ToolPin, load_pins

TOOLCHAIN_DIR_ENV = "PEQUOD_TOOLCHAIN_DIR"


class ToolNotFoundError(LookupError):
    """A pinned binary is not built; the message says how to build it."""


def toolchain_root() -> Path:
    """Where built tools live: ``$PEQUOD_TOOLCHAIN_DIR``, else the user's cache directory."""
    explicit = os.environ.get(TOOLCHAIN_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "pequod" / "toolchain"


def tool_directory(pin: ToolPin) -> Path:
    """The directory that holds the binaries of one pinned tool."""
    return toolchain_root() / pin.directory_name


def pin_for_binary(binary: str) -> ToolPin:
    """The pin of the tool that provides ``binary`` (e.g. ``kube-apiserver`` → kubernetes)."""
    for pin in load_pins().values():
        if binary in pin.binaries:
            return pin
    raise ToolNotFoundError(f"no pinned tool provides a binary named {binary!r}")


def find_binary(binary: str, *, allow_path_lookup: bool = False) -> Path:
    """The path of a pinned binary.

    ``PEQUOD_<BINARY>`` (e.g. ``PEQUOD_CUE``, ``PEQUOD_KUBE_APISERVER``) overrides the cache;
    ``allow_path_lookup`` falls back to ``$PATH`` (used for ``cue`` inside a container image).
    """
    override = os.environ.get("PEQUOD_" + binary.upper().replace("-", "_"))
    if override:
        path = Path(override)
        if not path.is_file():
            raise ToolNotFoundError(f"{binary}: {path} (from the environment) does not exist")
        return path
    pin = pin_for_binary(binary)
    path = tool_directory(pin) / binary
    if path.is_file():
        return path
    if allow_path_lookup:
        found = shutil.which(binary)
        if found:
            return Path(found)
    raise ToolNotFoundError(
        f"{binary} {pin.version} is not built (looked in {path}); run `pequod toolchain build`"
    )
