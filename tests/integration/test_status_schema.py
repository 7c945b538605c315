"""The status fields a module declares in ``#Status`` are part of its CRD on a real API server:
``kubectl explain`` shows their doc comments, a status written through the status subresource
keeps them (and still loses what nobody declared), and a printer column may show one."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pequod.api.ownership import crd_labels
from pequod.controlplane import ControlPlane
from pequod.crdgen.crd import ApiDefinition
from pequod.crdgen.generate import generate_api
from pequod.module.source import load_directory
from pequod.sandbox.kubectl import wait_established
from pequod.toolchain.locate import find_binary

pytestmark = pytest.mark.cluster

MODULE = {
    "input.cue": """package probe

#Input: {
\t// Image to run.
\timage: string
}
""",
    "status.cue": """package probe

#Status: {
\t// URL the service answers on.
\turl?: string
}
""",
    "metadata.cue": """package probe

#Metadata: {
\tname:    "statusprobe"
\tversion: "1.0.0"
\tkind:    "StatusProbe"
\tprinterColumns: [
\t\t{name: "URL", type: "string", jsonPath: ".status.url", description: "Where it answers"},
\t]
}
""",
}


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
def probe_crd(
    control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("statusprobe")
    for file_name, text in MODULE.items():
        (directory / file_name).write_text(text)
    generated = asyncio.run(
        generate_api(
            load_directory(directory),
            ApiDefinition(name="statusprobe"),
            labels=crd_labels("statusprobe"),
        )
    )
    applied = kubectl(control_plane, "apply", "-f", "-", stdin=yaml.safe_dump(generated.crd))
    assert applied.returncode == 0, applied.stderr
    name: str = generated.crd["metadata"]["name"]
    wait_established(control_plane.kubeconfig, name)
    # Discovery of the new kind, and its OpenAPI document that explain reads, take a moment
    # after Established.
    deadline = time.monotonic() + 60
    while kubectl(control_plane, "explain", "statusprobes").returncode != 0:
        assert time.monotonic() < deadline, "the new kind never showed up in the OpenAPI"
        time.sleep(0.5)
    try:
        yield name
    finally:
        kubectl(control_plane, "delete", "crd", name, "--wait=false")


def test_explain_shows_the_status_doc_comment(control_plane: ControlPlane, probe_crd: str) -> None:
    explained = kubectl(control_plane, "explain", "statusprobes.status.url")
    assert explained.returncode == 0, explained.stderr
    assert "URL the service answers on." in explained.stdout
    # Pequod's own fields are still there beside it.
    assert kubectl(control_plane, "explain", "statusprobes.status.phase").returncode == 0


def test_status_subresource_keeps_the_declared_field(
    control_plane: ControlPlane, probe_crd: str, namespace: str
) -> None:
    created = kubectl(
        control_plane,
        "apply",
        "-f",
        "-",
        stdin=(
            "apiVersion: platform.pequod.io/v1alpha1\nkind: StatusProbe\n"
            f"metadata:\n  name: shop\n  namespace: {namespace}\nspec:\n  image: nginx\n"
        ),
    )
    assert created.returncode == 0, created.stderr
    status = {"phase": "Ready", "url": "http://shop.example.svc", "undeclared": "pruned"}
    patched = kubectl(
        control_plane,
        "patch",
        "statusprobe",
        "shop",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    assert patched.returncode == 0, patched.stderr
    stored = json.loads(
        kubectl(control_plane, "get", "statusprobe", "shop", "-n", namespace, "-o", "json").stdout
    )
    assert stored["status"] == {"phase": "Ready", "url": "http://shop.example.svc"}

    listed = kubectl(control_plane, "get", "statusprobes", "-n", namespace)
    assert listed.returncode == 0, listed.stderr
    # Columns by offset: READY is blank (no Ready condition), so splitting would shift them.
    header, row = listed.stdout.splitlines()[:2]
    assert row[header.index("URL") :].split()[0] == "http://shop.example.svc"
