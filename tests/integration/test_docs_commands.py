"""Every command shown in docs/ runs as shown. A ```sh block is a list of commands that must
succeed; commands are run from the repository root with the installed `pequod` on PATH."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cue_harness import REPOSITORY

DOCS = REPOSITORY / "docs"
_SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


def documented_commands() -> list[tuple[str, str]]:
    commands = []
    for page in sorted(DOCS.glob("*.md")):
        for block in _SH_BLOCK.findall(page.read_text()):
            for line in block.splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    commands.append((page.name, line.strip()))
    return commands


def test_docs_have_commands() -> None:
    assert documented_commands()


@pytest.mark.parametrize(("page", "command"), documented_commands())
def test_documented_command_runs(page: str, command: str) -> None:
    environment = dict(os.environ)
    environment["PATH"] = str(Path(sys.executable).parent) + os.pathsep + environment["PATH"]
    completed = subprocess.run(
        shlex.split(command),
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, f"{page}: {command}\n{completed.stderr}"
