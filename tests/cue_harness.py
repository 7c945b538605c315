"""Helpers for tests that run the real ``cue`` binary."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from pequod.cue.runner import CueError, run_cue

REPOSITORY = Path(__file__).resolve().parent.parent
SCHEMA_CORPUS = Path(__file__).resolve().parent / "schema_corpus"


def cue_accepts_input(module_directory: Path, value: Any) -> bool:
    """Whether CUE accepts ``value`` as a complete ``#Input`` (defaults may fill gaps)."""

    async def check() -> bool:
        try:
            await run_cue(
                [
                    "export",
                    ".",
                    "json:",
                    "-",
                    "-l",
                    "pequod_input:",
                    "-e",
                    # Unified inside a definition, as #Render does: a bare `#Input & x` in an
                    # -e expression is not checked for closedness by cue v0.17.
                    "{#W: {spec: #Input}, out: (#W & {spec: pequod_input}).spec}.out",
                    "--out",
                    "json",
                ],
                cwd=module_directory,
                stdin=json.dumps(value).encode(),
            )
        except CueError:
            return False
        return True

    return asyncio.run(check())
