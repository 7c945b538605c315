"""Reads the tool pins from ``versions.toml``."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True)
class ToolPin:
    """One tool pinned at one version: the Go module it comes from and the packages to build."""

    name: str
    module: str
    version: str
    packages: tuple[str, ...]
    binaries: tuple[str, ...]
    staging_version: str | None = None
    ldflags: tuple[str, ...] = ()

    @property
    def directory_name(self) -> str:
        """The cache directory of this tool at this version, e.g. ``cue-v0.17.1``."""
        return f"{self.name}-{self.version}"

    def expanded_ldflags(self) -> list[str]:
        """The ``-X`` flags with ``{version}``, ``{major}`` and ``{minor}`` filled in."""
        major, minor = self.version.lstrip("v").split(".")[:2]
        return [
            flag.format(version=self.version, major=major, minor=minor) for flag in self.ldflags
        ]


@functools.cache
def load_pins() -> dict[str, ToolPin]:
    """All pinned tools by name, in the order the pin file lists them (read once: the pin
    file ships with the package)."""
    text = resources.files("pequod.toolchain").joinpath("versions.toml").read_text()
    pins: dict[str, ToolPin] = {}
    for name, entry in tomllib.loads(text).items():
        packages = tuple(entry["packages"])
        binaries = tuple(entry.get("binaries") or [p.rsplit("/", 1)[-1] for p in packages])
        pins[name] = ToolPin(
            name=name,
            module=entry["module"],
            version=entry["version"],
            packages=packages,
            binaries=binaries,
            staging_version=entry.get("staging_version"),
            ldflags=tuple(entry.get("ldflags", ())),
        )
    return pins
