"""Every command shown in docs/ runs as shown, from the repository root with the installed
`pequod` on PATH.

Most pages list independent commands: each line of a ```sh block must succeed on its own.
A page that starts with ``<!-- docs-test: session -->`` is a session (the tutorial, the user
guide): its blocks run in order as one bash script, against a sandbox of the test's own, so
exports and here-documents work as they do for a reader. In a session, a line ending with
``# fails`` must fail (it shows an error on purpose)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cue_harness import REPOSITORY
from tests.sandbox_harness import stop_sandbox

DOCS = REPOSITORY / "docs"
SESSION_MARK = "<!-- docs-test: session -->"
_SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)
_EXPECTED_FAILURE = re.compile(r"\s+# fails\b.*$")


def _pages() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def session_pages() -> list[str]:
    return [p.name for p in _pages() if p.read_text().startswith(SESSION_MARK)]


def documented_commands() -> list[tuple[str, str]]:
    commands = []
    for page in _pages():
        text = page.read_text()
        if text.startswith(SESSION_MARK):
            continue
        for block in _SH_BLOCK.findall(text):
            for line in block.splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    commands.append((page.name, line.strip()))
    return commands


def session_script(page: Path) -> str:
    """The page's blocks as one script; ``# fails`` lines must fail."""
    lines = ["set -euo pipefail"]
    for block in _SH_BLOCK.findall(page.read_text()):
        for line in block.splitlines():
            if _EXPECTED_FAILURE.search(line):
                command = _EXPECTED_FAILURE.sub("", line)
                message = shlex.quote(f"expected to fail: {command}")
                lines.append(f"if {command}; then echo {message} >&2; exit 1; fi")
            else:
                lines.append(line)
    return "\n".join(lines) + "\n"


def _environment() -> dict[str, str]:
    environment = dict(os.environ)
    environment["PATH"] = str(Path(sys.executable).parent) + os.pathsep + environment["PATH"]
    return environment


def test_docs_have_commands() -> None:
    assert documented_commands()
    assert {"tutorial.md", "user-guide.md"} <= set(session_pages())


@pytest.mark.parametrize(("page", "command"), documented_commands())
def test_documented_command_runs(page: str, command: str) -> None:
    completed = subprocess.run(
        shlex.split(command),
        cwd=REPOSITORY,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, f"{page}: {command}\n{completed.stderr}"


@pytest.mark.cluster
@pytest.mark.workloads
@pytest.mark.parametrize("page", session_pages())
def test_session_page_runs(page: str, tmp_path: Path) -> None:
    state = tmp_path / "sandbox"
    environment = _environment()
    environment["PEQUOD_DEV_HOME"] = str(state)
    script = session_script(DOCS / page)
    try:
        completed = subprocess.run(
            ["bash", "-c", script],
            cwd=REPOSITORY,
            env=environment,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    finally:
        stop_sandbox(state)
    assert completed.returncode == 0, (
        f"{page} failed\n--- stdout ---\n{completed.stdout[-6000:]}\n"
        f"--- stderr ---\n{completed.stderr[-4000:]}"
    )
