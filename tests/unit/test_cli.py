"""The command line's entry points."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pequod
from pequod.cli.main import main
from pequod.toolchain.pins import load_pins


def test_version_names_pequod_and_the_cue_it_runs() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "pequod", "--version"], capture_output=True, text=True, check=True
    )
    first, second = completed.stdout.splitlines()
    assert first == f"pequod {pequod.__version__}"
    assert second.startswith(f"cue {load_pins()['cue'].version} (")


def test_no_command_prints_usage_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: pequod" in capsys.readouterr().err


def test_toolchain_list_names_every_tool(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["toolchain", "list"]) == 0
    output = capsys.readouterr().out
    for name in load_pins():
        assert name in output
