"""The one on-disk module cache, content-addressed under one root and bounded in size:
OCI artifacts (by manifest digest), Git checkouts (by commit), inline and ConfigMap module
files (by the digest of their content) in ``objects/``, and cue's answers about a module's
``#Input`` in ``schemas/``. Above the bound, entries are evicted least recently used first,
except those a module loaded in this process still points at."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

from pequod.metrics import MODULE_CACHE_BYTES, MODULE_CACHE_EVENTS
from pequod.module.source import ModuleSource

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
_SIZE_FILE = ".size"
_USED_FILE = ".used"


def module_cache_root() -> Path:
    """$PEQUOD_MODULE_CACHE, else ``pequod-modules`` in the temporary directory."""
    configured = os.environ.get("PEQUOD_MODULE_CACHE")
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / "pequod-modules"


class ModuleCache:
    def __init__(self, root: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.objects = root / "objects"
        self.schemas = root / "schemas"
        """Where the schema cache keeps its files: one file per entry, its time of last use
        the file's modification time."""
        self.objects.mkdir(parents=True, exist_ok=True)
        # Modules handed out, by entry: cue reads a module from its directory at every
        # render, so an entry a live module points at is not evicted (a module no one holds
        # any more is collected, and its entry becomes evictable).
        self._holders: dict[str, weakref.WeakSet[ModuleSource]] = {}
        self._holders_lock = threading.Lock()  # evict runs in fetch threads too

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

    def hold(self, key: str, module: ModuleSource) -> ModuleSource:
        """Keeps entry ``key`` from eviction while ``module`` lives."""
        with self._holders_lock:
            self._holders.setdefault(key, weakref.WeakSet()).add(module)
        return module

    def held(self, key: str) -> bool:
        with self._holders_lock:
            holders = self._holders.get(key)
            if holders is not None and not holders:
                del self._holders[key]
            return bool(holders)

    def entries(self) -> list[tuple[int, int, Path]]:
        """(last use, size, path) of every entry, least recently used first."""
        found = []
        for directory in self.objects.iterdir():
            with contextlib.suppress(OSError, ValueError):
                used = int((directory / _USED_FILE).read_text())
                size = int((directory / _SIZE_FILE).read_text())
                found.append((used, size, directory))
        with contextlib.suppress(OSError):
            for file in self.schemas.glob("*.json"):
                with contextlib.suppress(OSError):
                    stat = file.stat()
                    found.append((stat.st_mtime_ns, stat.st_size, file))
        return sorted(found)

    def evict(self, *, keep: str | None = None) -> list[str]:
        entries = self.entries()
        total = sum(size for _, size, _ in entries)
        evicted = []
        for _, size, path in entries:
            if total <= self.max_bytes:
                break
            if path.name == keep or self.held(path.name):
                continue
            if _remove(path):
                total -= size
                evicted.append(path.name)
                MODULE_CACHE_EVENTS.labels("eviction").inc()
        MODULE_CACHE_BYTES.set(total)
        return evicted


def _remove(path: Path) -> bool:
    """Removes an entry so that no one sees it half removed: a directory is renamed away
    first (another process's cue run in it fails rather than reading a partial module, and
    its next use fills it again); a schema file is unlinked at once."""
    try:
        if path.is_dir():
            trash = path.with_name(f".evicted-{path.name}-{os.getpid()}-{time.time()}")
            path.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            path.unlink()
    except OSError:
        return False
    return True


def _mark_used(directory: Path) -> None:
    """Records the time of use in the entry (file times can be too coarse to order uses)."""
    with contextlib.suppress(OSError):
        (directory / _USED_FILE).write_text(str(time.time_ns()))
