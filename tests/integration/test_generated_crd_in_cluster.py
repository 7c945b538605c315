"""The CRDs Pequod generates are accepted by a real API server, which then enforces the
module's schema: defaults filled in, bounds and unknown fields refused, descriptions explained."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from pequod.api.ownership import crd_labels
from pequod.controlplane import ControlPlane
from pequod.crdgen.crd import ApiDefinition
from pequod.crdgen.generate import generate_api
from pequod.module.embedded import load_embedded
from pequod.sandbox.kubectl import wait_established
from pequod.toolchain.locate import find_binary

pytestmark = pytest.mark.cluster


def kubectl(
    plane: ControlPlane, *arguments: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(find_binary("kubectl")), f"--kubeconfig={plane.kubeconfig}", *arguments],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def webservice_crd(control_plane: ControlPlane) -> str:
    module = load_embedded("embedded:webservice@1.1.0")
    generated = asyncio.run(
        generate_api(module, ApiDefinition(name="webservice"), labels=crd_labels("webservice"))
    )
    applied = kubectl(control_plane, "apply", "-f", "-", stdin=yaml.safe_dump(generated.crd))
    assert applied.returncode == 0, applied.stderr
    name: str = generated.crd["metadata"]["name"]
    wait_established(control_plane.kubeconfig, name)
    # Discovery of the new kind takes a moment after Established.
    deadline = time.monotonic() + 30
    while kubectl(control_plane, "get", "ws", "-A").returncode != 0:
        assert time.monotonic() < deadline, "the new kind never showed up in discovery"
        time.sleep(0.5)
    return name


def instance(namespace: str, spec: str) -> str:
    return (
        "apiVersion: platform.pequod.io/v1alpha1\nkind: WebService\n"
        f"metadata:\n  name: shop\n  namespace: {namespace}\nspec:\n{spec}"
    )


def test_api_server_applies_defaults(
    control_plane: ControlPlane, webservice_crd: str, namespace: str
) -> None:
    created = kubectl(
        control_plane, "apply", "-f", "-", stdin=instance(namespace, "  image: nginx\n")
    )
    assert created.returncode == 0, created.stderr
    stored = json.loads(
        kubectl(control_plane, "get", "ws", "shop", "-n", namespace, "-o", "json").stdout
    )
    assert stored["spec"]["port"] == 8080
    assert stored["spec"]["replicas"] == 2
    assert stored["spec"]["resources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("  image: nginx\n  port: 70000\n", "spec.port: Invalid value: 70000"),
        ("  image: 'NOT AN IMAGE'\n", "spec.image: Invalid value"),
        ("  port: 80\n", "spec.image: Required value"),
        ("  image: nginx\n  bogus: 1\n", 'unknown field "spec.bogus"'),
    ],
    ids=["bound", "pattern", "required", "unknown-field"],
)
def test_api_server_refuses_what_cue_refuses(
    control_plane: ControlPlane, webservice_crd: str, namespace: str, spec: str, message: str
) -> None:
    created = kubectl(control_plane, "apply", "-f", "-", stdin=instance(namespace, spec))
    assert created.returncode != 0
    assert message in created.stderr


def test_explain_shows_the_module_comments(
    control_plane: ControlPlane, webservice_crd: str
) -> None:
    explained = kubectl(control_plane, "explain", "webservice.spec.port")
    assert explained.returncode == 0, explained.stderr
    assert "Port the container listens on" in explained.stdout


def test_get_shows_the_printer_columns(
    control_plane: ControlPlane, webservice_crd: str, namespace: str
) -> None:
    kubectl(control_plane, "apply", "-f", "-", stdin=instance(namespace, "  image: nginx\n"))
    listed = kubectl(control_plane, "get", "ws", "-n", namespace)
    header = listed.stdout.splitlines()[0].split()
    assert header[:3] == ["NAME", "READY", "PHASE"]
    assert "IMAGE" in header
    assert header[-1] == "AGE"


def test_all_embedded_crds_are_structural(control_plane: ControlPlane, tmp_path: Path) -> None:
    for reference, name in (
        ("embedded:database@1.0.0", "database"),
        ("embedded:webservice@1.0.0", "web"),
    ):
        generated = asyncio.run(
            generate_api(
                load_embedded(reference), ApiDefinition(name=name), labels=crd_labels(name)
            )
        )
        dry_run = kubectl(
            control_plane,
            "apply",
            "--dry-run=server",
            "-f",
            "-",
            stdin=yaml.safe_dump(generated.crd),
        )
        assert dry_run.returncode == 0, dry_run.stderr
