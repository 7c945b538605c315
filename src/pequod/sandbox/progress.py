"""Progress lines for a long command: each step with the time elapsed since the start."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.started = time.monotonic()

    def line(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed:6.1f}s] {text}", file=self.stream, flush=True)

    @contextmanager
    def step(self, text: str) -> Iterator[None]:
        """Prints ``text ...`` and then ``text: done (N s)`` or ``text: FAILED``."""
        self.line(f"{text} ...")
        began = time.monotonic()
        try:
            yield
        except BaseException:
            self.line(f"{text}: FAILED")
            raise
        self.line(f"{text}: done ({time.monotonic() - began:.1f} s)")
