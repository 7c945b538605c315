"""The README's two set-up commands: the quick start (run here, end to end, against a sandbox
of its own) and the test command (which is running this)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.operator_harness import REPOSITORY
from tests.sandbox_harness import stop_sandbox

README = REPOSITORY / "README.md"


def readme_commands() -> list[str]:
    blocks = re.findall(r"^```sh\n(.*?)^```", README.read_text(), re.MULTILINE | re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def test_readme_has_exactly_the_two_set_up_commands() -> None:
    assert readme_commands() == ["./scripts/demo", "./scripts/test"]
    ci = (REPOSITORY / ".ci" / "run").read_text()
    assert "scripts/test" in ci


@pytest.mark.cluster
@pytest.mark.workloads
def test_quick_start_ends_with_ready_instances(tmp_path: Path) -> None:
    state = tmp_path / "sandbox"
    try:
        completed = subprocess.run(
            ["./scripts/demo"],
            cwd=REPOSITORY,
            env={**os.environ, "PEQUOD_DEV_HOME": str(state)},
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    finally:
        stop_sandbox(state)
    assert completed.returncode == 0, completed.stdout[-5000:] + completed.stderr[-3000:]
    listing = completed.stdout.split("$ kubectl get ws,db -n default", 1)[1]
    rows = [line.split() for line in listing.splitlines()[1:6] if line.strip()]
    ready = {row[0]: row[1] for row in rows if row[0] != "NAME"}
    assert ready == {
        "webservice.platform.pequod.io/hello": "True",
        "database.platform.pequod.io/orders": "True",
    }, listing
    assert "deployment.apps/hello" in completed.stdout
    assert "statefulset.apps/orders" in completed.stdout
    assert "every instance is Ready" in completed.stdout
