"""Reports the version of the ``cue`` binary Pequod will run."""

from __future__ import annotations

import subprocess

from pequod.toolchain.locate import ToolNotFoundError, find_binary


def cue_version() -> str:
    """``v0.17.1 (/path/to/cue)``, or why no ``cue`` was found."""
    try:
        cue = find_binary("cue", allow_path_lookup=True)
    except ToolNotFoundError as error:
        return f"not found: {error}"
    try:
        completed = subprocess.run(  # noqa: S603 - fixed argv
            [str(cue), "version"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unusable ({cue}): {error}"
    first_line = (completed.stdout.splitlines() or [""])[0]
    if completed.returncode != 0 or not first_line.startswith("cue version "):
        return f"unusable ({cue}): exit {completed.returncode}: {completed.stderr.strip()}"
    return f"{first_line.removeprefix('cue version ')} ({cue})"
