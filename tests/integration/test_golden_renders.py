"""Golden files of the embedded modules: each input under tests/golden/<module>-v<version>/
renders to its .golden.yaml (with policy/defaults checked, and the live state of its
.observed.yaml when there is one), and each module version's CRD to crd.golden.yaml.
Set PEQUOD_UPDATE_GOLDEN=1 to rewrite them after an intended change."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from pequod.api.ownership import crd_labels
from pequod.crdgen.crd import ApiDefinition
from pequod.crdgen.generate import generate_api
from pequod.module.embedded import load_embedded
from pequod.render.instance import Instance
from pequod.render.render import Renderer

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
UPDATE = os.environ.get("PEQUOD_UPDATE_GOLDEN") == "1"
CASES = sorted(GOLDEN.glob("*/*.input.yaml"))
VERSIONS = sorted(p for p in GOLDEN.iterdir() if p.is_dir())


def module_reference(directory: Path) -> str:
    name, _, version = directory.name.rpartition("-v")
    return f"embedded:{name}@{version}"


def check_golden(path: Path, actual: dict[str, Any]) -> None:
    text = yaml.safe_dump(actual, sort_keys=False)
    if UPDATE or not path.exists():
        path.write_text(text)
        if not UPDATE:
            pytest.fail(f"{path} did not exist; it was written, check it in")
    assert yaml.safe_load(path.read_text()) == actual, f"{path} differs from the render"


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_render_matches_golden(case: Path) -> None:
    module = load_embedded(module_reference(case.parent))
    policy = load_embedded("embedded:policy/defaults")
    instance = Instance.from_object(yaml.safe_load(case.read_text()))
    # Live state, for modules that read it: CASE.observed.yaml, as `pequod render --observed`
    # takes it (without one, every value read is pending).
    observed_file = case.with_name(case.name.replace(".input.", ".observed."))
    observed = yaml.safe_load(observed_file.read_text()) if observed_file.exists() else {}
    result = asyncio.run(
        Renderer().render_with_state(
            module,
            instance,
            node_values=observed.get("nodes") or {},
            referenced=observed.get("references") or {},
            policies=[policy],
        )
    )
    rendered = result.to_dict()
    del rendered["renderHash"], rendered["moduleDigest"]
    assert rendered["violations"] == [], "the embedded modules must satisfy policy/defaults"
    check_golden(case.with_name(case.name.replace(".input.", ".golden.")), rendered)


@pytest.mark.parametrize("directory", VERSIONS, ids=lambda p: p.name)
def test_crd_matches_golden(directory: Path) -> None:
    module = load_embedded(module_reference(directory))
    name = directory.name.rpartition("-v")[0]
    generated = asyncio.run(generate_api(module, ApiDefinition(name=name), labels=crd_labels(name)))
    assert generated.schema.notes == ()
    check_golden(directory / "crd.golden.yaml", generated.crd)


def test_every_embedded_platform_module_has_golden_cases() -> None:
    from pequod.module.embedded import list_embedded

    platform = {r for r in list_embedded() if not r.startswith("embedded:policy/")}
    covered = {module_reference(directory) for directory in VERSIONS}
    assert platform == covered
