"""Builds the pinned tools from source through the Go module proxy, into the toolchain cache.

Idempotent: a tool whose binaries are all present is left alone. A tool is built into a staging
directory and renamed into place, so an interrupted build never looks finished. A file lock keeps
two concurrent builds (say, two test runs) from racing.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pequod.toolchain.locate import tool_directory, toolchain_root
from pequod.toolchain.pins import ToolPin, load_pins

Report = Callable[[str], None]

# A go.mod `replace` of a module by a path inside the same repository, e.g.
# `k8s.io/api => ./staging/src/k8s.io/api` or `go.etcd.io/etcd/api/v3 => ../api`.
_LOCAL_REPLACE = re.compile(r"^\s*(?:replace\s+)?(\S+)\s*=>\s*(\.\.?/\S*)\s*$", re.MULTILINE)
_GO_DIRECTIVE = re.compile(r"^go\s+(\S+)\s*$", re.MULTILINE)
_GODEBUG_DIRECTIVE = re.compile(r"^godebug\s+.+$", re.MULTILINE)


class ToolchainBuildError(RuntimeError):
    """A tool failed to build; the message carries the failing command and its output tail."""


@dataclass(frozen=True)
class BuildResult:
    pin: ToolPin
    built: bool
    seconds: float


def missing_binaries(pin: ToolPin) -> list[str]:
    directory = tool_directory(pin)
    return [name for name in pin.binaries if not (directory / name).is_file()]


def build_toolchain(
    names: Sequence[str] | None = None, *, report: Report = print
) -> list[BuildResult]:
    """Builds every pinned tool (or only ``names``) that is missing from the cache."""
    pins = load_pins()
    unknown = [name for name in names or () if name not in pins]
    if unknown:
        raise ToolchainBuildError(f"unknown tool(s) {unknown}; pinned: {sorted(pins)}")
    selected = [pins[name] for name in names] if names else list(pins.values())
    root = toolchain_root()
    root.mkdir(parents=True, exist_ok=True)
    results: list[BuildResult] = []
    with _exclusive_lock(root / ".lock"):
        for pin in selected:
            if not missing_binaries(pin):
                report(f"{pin.name} {pin.version}: present in {tool_directory(pin)}")
                results.append(BuildResult(pin, built=False, seconds=0.0))
                continue
            report(f"{pin.name} {pin.version}: building {', '.join(pin.binaries)} ...")
            started = time.monotonic()
            _build_one(pin, root)
            seconds = time.monotonic() - started
            report(f"{pin.name} {pin.version}: built in {seconds:.1f} s -> {tool_directory(pin)}")
            results.append(BuildResult(pin, built=True, seconds=seconds))
    return results


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_one(pin: ToolPin, root: Path) -> None:
    staging = Path(tempfile.mkdtemp(prefix=f".build-{pin.directory_name}-", dir=root))
    try:
        with tempfile.TemporaryDirectory(prefix="pequod-gobuild-") as workdir:
            _write_wrapper_module(pin, Path(workdir))
            _go(["get", *(f"{package}@{pin.version}" for package in pin.packages)], Path(workdir))
            _go(_build_arguments(pin, staging), Path(workdir))
        for binary in pin.binaries:
            if not (staging / binary).is_file():
                raise ToolchainBuildError(f"{pin.name}: the build produced no {binary}")
        target = tool_directory(pin)
        if target.exists():
            shutil.rmtree(target)
        staging.chmod(0o755)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _build_arguments(pin: ToolPin, output: Path) -> list[str]:
    ldflags = " ".join(["-s", "-w", *pin.expanded_ldflags()])
    if len(pin.packages) == 1 and len(pin.binaries) == 1:
        destination = str(output / pin.binaries[0])
    else:
        destination = str(output) + os.sep
    return ["build", "-trimpath", f"-ldflags={ldflags}", "-o", destination, *pin.packages]


def _write_wrapper_module(pin: ToolPin, workdir: Path) -> None:
    """A main module that requires the pinned module and undoes its repository-local replaces.

    Replaces inside a dependency's go.mod are ignored by Go, which is why ``go install`` refuses
    such modules; the wrapper states each of them again, pointing at the published release.
    """
    upstream = _upstream_go_mod(pin)
    go_version = _GO_DIRECTIVE.search(upstream)
    lines = [
        "module pequod.local/toolchain/" + pin.name,
        "",
        f"go {go_version.group(1) if go_version else '1.22'}",
        *_GODEBUG_DIRECTIVE.findall(upstream),
        "",
        f"require {pin.module} {pin.version}",
    ]
    for module, _local_path in _LOCAL_REPLACE.findall(upstream):
        # Only placeholders need a replace: a sibling required at a real version resolves as is.
        if re.search(rf"^\s*(?:require\s+)?{re.escape(module)} v0\.0\.0\s*$", upstream, re.M):
            if pin.staging_version is None:
                raise ToolchainBuildError(
                    f"{pin.module} requires {module} v0.0.0: pin a staging_version for it"
                )
            lines.append(f"replace {module} => {module} {pin.staging_version}")
    (workdir / "go.mod").write_text("\n".join(lines) + "\n")


def _upstream_go_mod(pin: ToolPin) -> str:
    completed = _go(["mod", "download", "-json", f"{pin.module}@{pin.version}"], None)
    info = json.loads(completed)
    if "Error" in info:
        raise ToolchainBuildError(f"{pin.module}@{pin.version}: {info['Error']}")
    return Path(info["GoMod"]).read_text()


def _go(arguments: list[str], cwd: Path | None) -> str:
    go = shutil.which("go")
    if go is None:
        raise ToolchainBuildError("`go` is not on PATH: it is needed to build the toolchain")
    environment = dict(os.environ)
    environment.update(
        CGO_ENABLED="0",
        GOFLAGS="-mod=mod -buildvcs=false",
        GOTOOLCHAIN="local",
        GOWORK="off",
    )
    completed = subprocess.run(  # noqa: S603 - argv of the go binary, no shell
        [go, *arguments],
        cwd=cwd or tempfile.gettempdir(),
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        tail = "\n".join((completed.stderr or completed.stdout).splitlines()[-40:])
        raise ToolchainBuildError(f"go {' '.join(arguments[:3])} ... failed:\n{tail}")
    return completed.stdout
