"""``pequod dev``: the sandbox comes up with the operator running as its ServiceAccount, serves
the example kinds, runs the demo to Ready, refuses a second start, reports its status, fails
clearly when a component does not start, and goes away without leftovers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pequod.sandbox.state import SandboxState, process_alive
from pequod.toolchain.locate import find_binary
from tests.operator_harness import REPOSITORY
from tests.sandbox_harness import pequod_dev, stop_sandbox

pytestmark = [pytest.mark.cluster, pytest.mark.workloads]


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "sandbox"
    try:
        yield directory
    finally:
        stop_sandbox(directory)


def kubectl_json(state: Path, *arguments: str) -> Any:
    completed = subprocess.run(
        [
            str(find_binary("kubectl")),
            f"--kubeconfig={state / 'control-plane' / 'kubeconfig'}",
            *arguments,
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(completed.stdout)


def test_up_demo_status_down(state: Path) -> None:
    up = pequod_dev(state, "up", "--detach")
    assert up.returncode == 0, up.stdout + up.stderr
    for step in ("control plane", "operator", "Transforms", "export KUBECONFIG="):
        assert step in up.stdout
    assert "done (" in up.stdout  # every step reports its elapsed time

    again = pequod_dev(state, "up", "--detach")
    assert again.returncode == 1
    assert "already running" in again.stderr

    status = pequod_dev(state, "status")
    assert status.returncode == 0, status.stdout
    assert "webservice" in status.stdout
    assert "Ready=True" in status.stdout
    environment = pequod_dev(state, "env")
    assert f"export KUBECONFIG={state}/control-plane/kubeconfig" in environment.stdout

    # The operator runs with the ServiceAccount's token: the RBAC of manifests/ suffices and
    # the admission policy lets it (and only it) write ResourceGraphs.
    operator_log = (state / "logs" / "operator.log").read_text()
    assert "caches synced" in operator_log

    demo = pequod_dev(state, "demo", "--timeout=240")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "every instance is Ready" in demo.stdout
    instances = kubectl_json(state, "get", "ws,db", "-n", "default")
    ready = {item["metadata"]["name"]: item["status"]["phase"] for item in instances["items"]}
    assert ready == {"hello": "Ready", "orders": "Ready"}
    claim = kubectl_json(state, "get", "pvc", "orders", "-n", "default")
    assert claim["status"]["phase"] == "Bound"

    record = SandboxState(state).read()
    assert record is not None
    down = pequod_dev(state, "down")
    assert down.returncode == 0, down.stderr
    assert not state.exists()
    assert not any(process_alive(pid) for pid in record.process_ids.values())
    assert not process_alive(record.supervisor_pid)
    assert pequod_dev(state, "status").returncode == 1


def test_a_component_that_does_not_start_is_named_with_its_log(state: Path, tmp_path: Path) -> None:
    broken = tmp_path / "kwok"
    broken.write_text("#!/bin/sh\necho 'kwok: cannot bind the node lease: boom' >&2\nexit 3\n")
    broken.chmod(0o755)
    up = pequod_dev(state, "up", "--detach", environment={"PEQUOD_KWOK": str(broken)})
    assert up.returncode == 1
    assert "kwok exited with status 3" in up.stdout
    assert "cannot bind the node lease: boom" in up.stdout
    assert "did not start" in up.stderr
    down = pequod_dev(state, "down")
    assert down.returncode == 0
    assert not state.exists()


def test_foreground_up_stops_on_ctrl_c(state: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "pequod", "dev", f"--state-dir={state}", "up", "--no-transforms"],
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "Ctrl-C" in line or not line:
                break
        assert any("Ctrl-C" in line for line in lines), "".join(lines)
        # The line invites a Ctrl-C: one sent at once must stop the sandbox cleanly (no
        # KeyboardInterrupt traceback, exit 0), so the record must already be there too.
        record = SandboxState(state).running()
        process.send_signal(signal.SIGINT)
        assert record is not None, "the sandbox announced Ctrl-C before recording itself"
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, "".join(lines) + output
        assert "Traceback" not in output, output
        assert not state.exists()
        assert not any(process_alive(pid) for pid in record.process_ids.values())
    finally:
        if process.poll() is None:
            process.kill()
