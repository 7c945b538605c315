"""``pequod manifests``: prints the CRDs of Pequod's own kinds (what manifests/crds/ holds)."""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from pequod.api.crds import all_crds


def register(commands: Any) -> None:
    manifests = commands.add_parser(
        "manifests", help="print the CRDs of Transform and ResourceGraph"
    )
    manifests.set_defaults(run=_manifests)


def _manifests(_: argparse.Namespace) -> int:
    print(yaml.safe_dump_all(all_crds(), sort_keys=False), end="")
    return 0
