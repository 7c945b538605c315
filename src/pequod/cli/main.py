"""Entry point of the ``pequod`` command: parses arguments and dispatches to a subcommand."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pequod import __version__
from pequod.cli import (
    dev_commands,
    manifests_command,
    module_commands,
    push_command,
    rollout_commands,
    run_command,
    toolchain_commands,
)
from pequod.toolchain.cue_version import cue_version


def version_text() -> str:
    return f"pequod {__version__}\ncue {cue_version()}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pequod",
        description="Turns platform modules written in CUE into Kubernetes APIs.",
    )
    parser.add_argument(
        "--version", action="store_true", help="print the versions of pequod and cue, then exit"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    module_commands.register(commands)
    run_command.register(commands)
    dev_commands.register(commands)
    push_command.register(commands)
    rollout_commands.register(commands)
    manifests_command.register(commands)
    toolchain_commands.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    if arguments.version:
        print(version_text())
        return 0
    if arguments.command is None:
        parser.print_help(sys.stderr)
        return 2
    exit_code: int = arguments.run(arguments)
    return exit_code
