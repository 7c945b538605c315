"""Packing a module directory into Pequod's artifact layer, and unpacking layers safely."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from pequod.module.source import ModuleError

MAX_UNPACKED_BYTES = 64 * 1024 * 1024
"""A module is source text: anything larger is refused rather than filling the disk."""

_SKIPPED = {".git", "__pycache__"}


def module_files(directory: Path) -> list[Path]:
    """The files a module consists of: every file below it, hidden VCS and cache folders
    excepted, in a stable order."""
    return sorted(
        path
        for path in directory.rglob("*")
        if path.is_file() and not _SKIPPED.intersection(path.relative_to(directory).parts)
    )


def pack(directory: Path) -> bytes:
    """A reproducible tar.gz of the module (fixed order, times, owners and modes), so the
    same content always has the same layer digest."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for path in module_files(directory):
            data = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(directory).as_posix())
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _safe_target(destination: Path, name: str) -> Path:
    relative = PurePosixPath(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise ModuleError(f"artifact entry {name!r} escapes the module directory")
    return destination.joinpath(*relative.parts)


def unpack_tar(data: bytes, destination: Path) -> None:
    total = 0
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as archive:
        for member in archive.getmembers():
            if member.isdir():
                continue
            if not member.isfile():
                raise ModuleError(f"artifact entry {member.name!r} is not a regular file")
            total += member.size
            if total > MAX_UNPACKED_BYTES:
                raise ModuleError("artifact unpacks to more than 64 MiB")
            target = _safe_target(destination, member.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            extracted = archive.extractfile(member)
            assert extracted is not None
            target.write_bytes(extracted.read())


def unpack_zip(data: bytes, destination: Path) -> None:
    total = 0
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for entry in archive.infolist():
            if entry.is_dir():
                continue
            total += entry.file_size
            if total > MAX_UNPACKED_BYTES:
                raise ModuleError("artifact unpacks to more than 64 MiB")
            target = _safe_target(destination, entry.filename)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(entry))
