"""Runs ``pequod dev`` as a user would, against a state directory of the test's own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.operator_harness import REPOSITORY


def pequod_dev(
    state: Path,
    *arguments: str,
    environment: dict[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pequod", "dev", f"--state-dir={state}", *arguments],
        cwd=REPOSITORY,
        env={**os.environ, **(environment or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def stop_sandbox(state: Path) -> None:
    """Cleanup for a test that may have failed half-way: never leaves a sandbox running."""
    pequod_dev(state, "down", timeout=120)
