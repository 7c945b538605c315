"""``pequod push DIR oci://HOST/REPO:TAG``: publishes a module as Pequod's OCI artifact."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from pequod.cue.runner import CueError
from pequod.delivery.oci import FetchError, OciReference
from pequod.module.metadata import read_metadata
from pequod.module.source import ModuleError, load_directory


def register(commands: Any) -> None:
    push = commands.add_parser(
        "push", help="push a module directory to an OCI registry; prints the digest"
    )
    push.add_argument("directory", type=Path, help="the module directory")
    push.add_argument("target", help="oci://HOST/REPO:TAG (HOST+insecure for plain HTTP)")
    push.add_argument("--insecure", action="store_true", help="plain HTTP (loopback registries)")
    push.add_argument(
        "--username",
        default=os.environ.get("PEQUOD_REGISTRY_USERNAME"),
        help="registry user ($PEQUOD_REGISTRY_USERNAME); the password is read from "
        "$PEQUOD_REGISTRY_PASSWORD or asked for",
    )
    push.set_defaults(run=_push)


def _push(arguments: argparse.Namespace) -> int:
    try:
        reference = OciReference.parse(arguments.target, insecure=arguments.insecure)
        module = load_directory(arguments.directory)
    except ModuleError as error:
        print(f"pequod push: {error}", file=sys.stderr)
        return 2 if "OCI reference" in str(error) else 1
    credentials = None
    if arguments.username:
        password = os.environ.get("PEQUOD_REGISTRY_PASSWORD") or getpass.getpass()
        credentials = (arguments.username, password)
    try:
        metadata = asyncio.run(read_metadata(module))
    except CueError as error:
        print(f"pequod push: {module.directory}: {error}", file=sys.stderr)
        return 1
    try:
        from pequod.delivery.oci_client import OciClient  # oras: only for this command

        digest = OciClient(reference, credentials=credentials).push(
            module.directory,
            name=metadata.name or module.directory.name,
            version=metadata.version or "",
        )
    except FetchError as error:
        print(f"pequod push: {error}", file=sys.stderr)
        return 1
    print(digest)
    print(
        f"pushed {module.directory} to oci://{reference.registry}/{reference.repository}@{digest}",
        file=sys.stderr,
    )
    return 0
