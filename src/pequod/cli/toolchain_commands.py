"""``pequod toolchain``: build, list and locate the pinned tools."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from pequod.toolchain.build import ToolchainBuildError, build_toolchain, missing_binaries
from pequod.toolchain.locate import ToolNotFoundError, find_binary, tool_directory, toolchain_root
from pequod.toolchain.pins import load_pins


def register(commands: Any) -> None:
    toolchain = commands.add_parser(
        "toolchain", help="build or locate the pinned tools (cue, etcd, kube-apiserver, ...)"
    )
    actions = toolchain.add_subparsers(dest="action", metavar="ACTION", required=True)

    build = actions.add_parser("build", help="build every missing pinned tool from source")
    build.add_argument("tools", nargs="*", help="only these tools (default: all)")
    build.set_defaults(run=_build)

    listing = actions.add_parser("list", help="list pinned tools and whether they are built")
    listing.set_defaults(run=_list)

    path = actions.add_parser("path", help="print the path of a built binary")
    path.add_argument("binary", help="e.g. cue, etcd, kube-apiserver, kubectl, kwok")
    path.set_defaults(run=_path)


def _build(arguments: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        results = build_toolchain(arguments.tools or None)
    except ToolchainBuildError as error:
        print(f"pequod toolchain build: {error}", file=sys.stderr)
        return 1
    built = [r.pin.name for r in results if r.built]
    elapsed = time.monotonic() - started
    summary = f"built {', '.join(built)}" if built else "everything was already built"
    print(f"toolchain ready in {toolchain_root()} ({summary}; {elapsed:.1f} s)")
    return 0


def _list(_: argparse.Namespace) -> int:
    for pin in load_pins().values():
        missing = missing_binaries(pin)
        state = "built" if not missing else f"missing {', '.join(missing)}"
        print(f"{pin.name:<12} {pin.version:<10} {state:<20} {tool_directory(pin)}")
    return 0


def _path(arguments: argparse.Namespace) -> int:
    try:
        print(find_binary(arguments.binary))
    except ToolNotFoundError as error:
        print(f"pequod toolchain path: {error}", file=sys.stderr)
        return 1
    return 0
