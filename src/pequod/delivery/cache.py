"""The on-disk module cache: one directory per artifact, named by its digest (an OCI
manifest digest or a Git commit), evicted least recently used first above a size limit."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pequod.metrics import MODULE_CACHE_BYTES, MODULE_CACHE_EVENTS

_SIZE_FILE = ".size"
_USED_FILE = ".used"


class ModuleCache:
    def __init__(self, root: Path, max_bytes: int = 512 * 1024 * 1024) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.objects = root / "objects"
        self.objects.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> Path | None:
        directory = self.objects / key
        if not directory.is_dir():
            MODULE_CACHE_EVENTS.labels("miss").inc()
            return None
        MODULE_CACHE_EVENTS.labels("hit").inc()
        _mark_used(directory)
        return directory

    def put(self, key: str, fill: Callable[[Path], object]) -> Path:
        """Fills a new entry through ``fill(directory)`` and publishes it atomically (a
        failed or interrupted fill leaves nothing behind)."""
        directory = self.objects / key
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            fill(staging)
            size = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
            (staging / _SIZE_FILE).write_text(str(size))
            _mark_used(staging)
            try:
                staging.rename(directory)
            except OSError:  # filled by someone else meanwhile: theirs is as good
                shutil.rmtree(staging, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.evict(keep=key)
        return directory

    def entries(self) -> list[tuple[int, int, Path]]:
        """(last use, size, directory) of every entry, least recently used first."""
        found = []
        for directory in self.objects.iterdir():
            with contextlib.suppress(OSError, ValueError):
                used = int((directory / _USED_FILE).read_text())
                size = int((directory / _SIZE_FILE).read_text())
                found.append((used, size, directory))
        return sorted(found)

    def evict(self, *, keep: str | None = None) -> list[str]:
        entries = self.entries()
        total = sum(size for _, size, _ in entries)
        evicted = []
        for _, size, directory in entries:
            if total <= self.max_bytes:
                break
            if directory.name == keep:
                continue
            # A module in use is loaded from its directory again only on a cache hit, which
            # recreates nothing: evicting it means the next use fetches it again.
            trash = directory.with_name(f".evicted-{directory.name}-{os.getpid()}-{time.time()}")
            with contextlib.suppress(OSError):
                directory.rename(trash)
                shutil.rmtree(trash, ignore_errors=True)
                total -= size
                evicted.append(directory.name)
                MODULE_CACHE_EVENTS.labels("eviction").inc()
        MODULE_CACHE_BYTES.set(total)
        return evicted


def _mark_used(directory: Path) -> None:
    """Records the time of use in the entry (file times can be too coarse to order uses)."""
    with contextlib.suppress(OSError):
        (directory / _USED_FILE).write_text(str(time.time_ns()))
