"""Every command shown in docs/ runs as shown, from the repository root with the installed
`pequod` on PATH.

The convention (CONTRIBUTING.md says the same):

- Commands are in ```` ```sh ```` blocks. Every fenced block has a language; ``sh`` is the
  only one for commands, and a language this test does not know (``shell``, ``bash``,
  ``console``, a bare fence...) fails the test instead of being skipped.
- A ``sh`` block that cannot run here (it needs an image registry, a real cluster, an hour)
  says so as its first line, where a reader sees it: ``# not run by the docs test: REASON``.
- A command shown failing on purpose ends with ``# fails: TEXT`` or
  ``# fails (exit N): TEXT``: it must exit non-zero (with N, exactly N) and TEXT must appear,
  verbatim, in what it prints.
- Most pages list independent commands: each command of a ``sh`` block runs on its own in
  bash. A page that starts with ``<!-- docs-test: session -->`` is a session (the tutorial,
  the user guide): its blocks run in order as one bash script, against a sandbox of the test's
  own, so exports and here-documents work as they do for a reader.
- Every page has a command that runs, unless it is listed in ``PAGES_WITHOUT_COMMANDS`` with
  the reason.
- The README and CONTRIBUTING.md keep to the same fences; their commands are not run here (the
  README's two are run by test_quick_start.py; ``./scripts/test`` is what runs this)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.cue_harness import REPOSITORY
from tests.sandbox_harness import stop_sandbox

DOCS = REPOSITORY / "docs"
SESSION_MARK = "<!-- docs-test: session -->"
COMMAND_LANGUAGE = "sh"
# Languages of blocks that are not commands. Add one here only if it cannot be mistaken for a
# shell: commands in a block of another language would go unchecked.
NOT_COMMAND_LANGUAGES = frozenset({"cue", "yaml", "json", "text"})
NOT_RUN = re.compile(r"^# not run by the docs test: \S")
# Pages with no runnable command at all, and why. Any other page without one fails, and so
# does a page listed here that has one.
PAGES_WITHOUT_COMMANDS = {
    "operations.md": "every command needs an image registry or a real cluster",
}
_FENCE = re.compile(r"^```(.*)$")
_FAILS_MARK = re.compile(r"#\s*fails\b")
_EXPECTED_FAILURE = re.compile(r"\s+# fails(?: \(exit (?P<exit>\d+)\))?: (?P<text>\S.*?)\s*$")


@dataclass(frozen=True)
class Command:
    page: str
    line: int
    text: str  # the command as a reader types it, continuation lines joined
    fails: bool = False
    exit_code: int | None = None
    says: str = ""

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.text}"


@dataclass
class Page:
    name: str
    session: bool
    commands: list[Command] = field(default_factory=list)
    # For a session: the runnable blocks' lines, in order, as (line number, text).
    session_lines: list[tuple[int, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _command(page: str, line: int, text: str, problems: list[str]) -> Command:
    if not _FAILS_MARK.search(text):
        return Command(page, line, text)
    expected = _EXPECTED_FAILURE.search(text)
    if expected is None:
        problems.append(
            f"{page}:{line}: a failing command ends with '# fails: TEXT' or "
            f"'# fails (exit N): TEXT' (TEXT: what it prints): {text}"
        )
        return Command(page, line, text)
    exit_code = expected.group("exit")
    return Command(
        page,
        line,
        text[: expected.start()],
        fails=True,
        exit_code=int(exit_code) if exit_code is not None else None,
        says=expected.group("text"),
    )


def _logical_lines(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Joins continuation lines (ending with a backslash), as the shell does."""
    joined: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, text in lines:
        if pending is not None:
            number, text = pending[0], pending[1] + " " + text.strip()
        if text.endswith("\\"):
            pending = (number, text[:-1].rstrip())
            continue
        pending = None
        joined.append((number, text))
    if pending is not None:
        joined.append(pending)
    return joined


def parse_page(path: Path) -> Page:
    text = path.read_text()
    page = Page(path.name, text.startswith(SESSION_MARK))
    blocks: list[tuple[int, list[tuple[int, str]]]] = []
    opened: tuple[int, str] | None = None
    body: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fence = _FENCE.match(line)
        if opened is None:
            if fence:
                opened, body = (number, fence.group(1).strip()), []
            continue
        if fence and not fence.group(1).strip():
            start, language = opened
            opened = None
            if language == COMMAND_LANGUAGE:
                blocks.append((start, body))
            elif language not in NOT_COMMAND_LANGUAGES:
                page.problems.append(
                    f"{path.name}:{start}: fence language {language!r} is neither "
                    f"{COMMAND_LANGUAGE!r} (commands, run by this test) nor one of "
                    f"{sorted(NOT_COMMAND_LANGUAGES)}; a block of commands that cannot run "
                    "here is 'sh' with '# not run by the docs test: REASON' as its first line"
                )
            continue
        body.append((number, line))
    if opened is not None:
        page.problems.append(f"{path.name}:{opened[0]}: fence never closed")
    for start, lines in blocks:
        first = next((t.strip() for _, t in lines if t.strip()), "")
        if first.startswith("# not run"):
            if not NOT_RUN.match(first):
                page.problems.append(
                    f"{path.name}:{start}: write '# not run by the docs test: REASON': {first}"
                )
            continue
        if page.session:
            page.session_lines.extend(lines)
        for number, line in _logical_lines(lines):
            if line.strip() and not line.lstrip().startswith("#"):
                page.commands.append(_command(path.name, number, line.strip(), page.problems))
    return page


def pages() -> list[Page]:
    return [parse_page(path) for path in sorted(DOCS.glob("*.md"))]


def session_pages() -> list[str]:
    return [page.name for page in pages() if page.session]


def documented_commands() -> list[Command]:
    return [command for page in pages() if not page.session for command in page.commands]


def _expect_failure(command: Command) -> list[str]:
    """Bash lines that run ``command``, show its output and stop the script unless it failed
    as the page says."""
    shown = shlex.quote(str(command))
    says = shlex.quote(command.says)
    lines = [
        "set +e",
        f"docs_test_output=$( {command.text} 2>&1 ); docs_test_status=$?",
        "set -e",
        "printf '%s\\n' \"$docs_test_output\"",
        'if [ "$docs_test_status" -eq 0 ]; then',
        f"  echo expected to fail: {shown} >&2; exit 1",
        "fi",
    ]
    if command.exit_code is not None:
        lines += [
            f'if [ "$docs_test_status" -ne {command.exit_code} ]; then',
            f'  echo "expected exit {command.exit_code}, got $docs_test_status:" {shown} >&2',
            "  exit 1",
            "fi",
        ]
    lines += [
        f'if [[ "$docs_test_output" != *{says}* ]]; then',
        f"  echo expected to print {says}: {shown} >&2; exit 1",
        "fi",
    ]
    return lines


def session_script(page: Path) -> str:
    """The page's runnable blocks as one script; ``# fails`` commands must fail as they say."""
    parsed = parse_page(page)
    failing = {command.line: command for command in parsed.commands if command.fails}
    lines = ["set -euo pipefail"]
    for number, text in _logical_lines(parsed.session_lines):
        command = failing.get(number)
        lines += [text] if command is None else _expect_failure(command)
    return "\n".join(lines) + "\n"


def _environment() -> dict[str, str]:
    environment = dict(os.environ)
    environment["PATH"] = str(Path(sys.executable).parent) + os.pathsep + environment["PATH"]
    return environment


def test_docs_follow_the_convention() -> None:
    # The README and CONTRIBUTING.md follow it too; their commands are the set-up and test
    # commands themselves (test_quick_start.py runs the README's), so they are not run here.
    others = [parse_page(REPOSITORY / name) for name in ("README.md", "CONTRIBUTING.md")]
    problems = [problem for page in pages() + others for problem in page.problems]
    assert not problems, "\n".join(problems)


def test_every_page_has_a_runnable_command() -> None:
    found = {page.name: len(page.commands) for page in pages()}
    assert found, "no pages in docs/"
    without = sorted(name for name, count in found.items() if count == 0)
    assert without == sorted(PAGES_WITHOUT_COMMANDS), (
        f"pages with no runnable command: {without}; "
        f"expected exactly those of PAGES_WITHOUT_COMMANDS: {sorted(PAGES_WITHOUT_COMMANDS)}"
    )
    assert {"tutorial.md", "user-guide.md"} <= set(session_pages())


@pytest.mark.parametrize("command", documented_commands(), ids=str)
def test_documented_command_runs(command: Command) -> None:
    completed = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command.text],
        cwd=REPOSITORY,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = completed.stdout + completed.stderr
    if not command.fails:
        assert completed.returncode == 0, f"{command}\n{completed.stderr}"
        return
    assert completed.returncode != 0, f"expected to fail: {command}\n{output}"
    if command.exit_code is not None:
        assert completed.returncode == command.exit_code, f"{command}\n{output}"
    assert command.says in output, f"expected to print {command.says!r}: {command}\n{output}"


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
