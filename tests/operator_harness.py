"""Runs the operator as a separate process against the test control plane, and small helpers to
drive the cluster with the real kubectl."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from pequod.controlplane import ControlPlane
from pequod.controlplane.cluster import free_port
from pequod.toolchain.locate import find_binary

REPOSITORY = Path(__file__).resolve().parent.parent


class Kubectl:
    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane

    def run(
        self, *arguments: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(
            [str(find_binary("kubectl")), f"--kubeconfig={self.plane.kubeconfig}", *arguments],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if check and completed.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(arguments)}: {completed.stderr}")
        return completed

    def apply(self, manifest: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run("apply", "-f", "-", *extra, stdin=manifest)

    def get(self, *arguments: str) -> Any:
        completed = self.run("get", *arguments, "-o", "json", check=False)
        if completed.returncode != 0:
            if "NotFound" in completed.stderr or "not found" in completed.stderr:
                return None
            raise AssertionError(completed.stderr)
        return json.loads(completed.stdout)


def wait_for(
    probe: Callable[[], Any], *, within: float = 60.0, interval: float = 0.3, what: str = ""
) -> Any:
    """Polls ``probe`` until it returns something truthy, which is returned."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"not within {within} s: {what or probe.__name__} (last: {last!r})")


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    if not obj:
        return None
    for entry in (obj.get("status") or {}).get("conditions") or []:
        if entry.get("type") == type_:
            found: dict[str, Any] = entry
            return found
    return None


class OperatorProcess:
    """``pequod run`` as a child process with its log in a file."""

    def __init__(
        self, plane: ControlPlane, log_path: Path, *, kubeconfig: Path | None = None
    ) -> None:
        self.plane = plane
        self.kubeconfig = kubeconfig or plane.kubeconfig
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.metrics_port = free_port()
        self.health_port = free_port()

    def start(self, *extra: str, ready_line: str = "caches synced") -> None:
        """Starts the operator and waits until this run (not an earlier one appending to the
        same log) has logged ``ready_line``."""
        offset = self.log_size()
        log = self.log_path.open("ab")
        environment = dict(os.environ)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pequod",
                "run",
                f"--kubeconfig={self.kubeconfig}",
                "--log-format=console",
                "--resync-period=0",
                f"--metrics-bind-address=127.0.0.1:{self.metrics_port}",
                f"--health-probe-bind-address=127.0.0.1:{self.health_port}",
                # Short enough for a test to see a moved tag or branch picked up.
                "--module-resolve-ttl=2",
                "--module-fetch-timeout=5",
                f"--module-cache-dir={self.log_path.parent / 'modules'}",
                *extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=REPOSITORY,
        )
        log.close()
        wait_for(lambda: ready_line in self.log(offset), within=60, what=f"operator: {ready_line}")

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        if self.process is None:
            return None
        self.process.send_signal(sig)
        try:
            code = self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.process = None
        return code

    def metrics(self) -> dict[str, float]:
        """The operator's /metrics, as {"name{labels}": value}."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                samples[name] = float(value)
        # Totals over labels too, under the bare name ("pequod_reconcile_total").
        for name, value in list(samples.items()):
            if "{" in name:
                bare = name.split("{", 1)[0]
                samples[bare] = samples.get(bare, 0.0) + value
        return samples

    def get(self, path: str, port: int | None = None) -> tuple[int, str]:
        """GET on the operator's metrics (default) or probe port: (status, body)."""
        url = f"http://127.0.0.1:{port or self.metrics_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def kill(self) -> int | None:
        """SIGKILL: no shutdown at all, whatever the operator was doing."""
        return self.stop(signal.SIGKILL)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_size(self) -> int:
        """The log's length in bytes: an offset for ``log`` and ``log_entries``."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log(self, offset: int = 0) -> str:
        """The log (from byte ``offset``)."""
        try:
            with self.log_path.open("rb") as file:
                file.seek(offset)
                return file.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def log_entries(self, offset: int = 0) -> list[dict[str, Any]]:
        """The lines of a ``--log-format=json`` log (from byte ``offset``), decoded; a line
        that is not JSON (a crash's raw traceback) comes back as ``{"raw": line}``."""
        entries: list[dict[str, Any]] = []
        for line in self.log(offset).splitlines():
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                entry = {"raw": line}
            entries.append(entry if isinstance(entry, dict) else {"raw": line})
        return entries


def service_account_kubeconfig(plane: ControlPlane, kubectl: Kubectl, path: Path) -> Path:
    """A kubeconfig at ``path`` with a token of the operator's ServiceAccount (as the operator
    runs in a cluster), for a control plane where manifests/rbac is applied."""
    token = kubectl.run(
        "create", "token", "pequod", "-n", "pequod-system", "--duration=2h"
    ).stdout.strip()
    cluster = {"server": plane.server, "certificate-authority": str(plane.ca_certificate)}
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "plane", "cluster": cluster}],
                "users": [{"name": "pequod", "user": {"token": token}}],
                "contexts": [{"name": "pequod", "context": {"cluster": "plane", "user": "pequod"}}],
                "current-context": "pequod",
            }
        )
    )
    return path


# -- Transforms ---------------------------------------------------------------------------


def transform(name: str, cue_ref: str, extra: str = "") -> str:
    return (
        "apiVersion: platform.pequod.io/v1alpha1\nkind: Transform\n"
        f"metadata:\n  name: {name}\nspec:\n  cueRef: {cue_ref}\n{extra}"
    )


def ready_transform(kubectl: Kubectl, name: str) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        found = kubectl.get("transform", name)
        ready_condition = condition(found, "Ready")
        return found if ready_condition and ready_condition["status"] == "True" else None

    try:
        result: dict[str, Any] = wait_for(ready, what=f"Transform {name} Ready")
    except AssertionError as error:
        status = (kubectl.get("transform", name) or {}).get("status")
        raise AssertionError(f"{error}\nstatus: {json.dumps(status, indent=1)}") from None
    return result


def failed_transform(kubectl: Kubectl, name: str, reason: str) -> dict[str, Any]:
    def failed() -> dict[str, Any] | None:
        found = kubectl.get("transform", name)
        ready_condition = condition(found, "Ready")
        return found if ready_condition and ready_condition["reason"] == reason else None

    result: dict[str, Any] = wait_for(failed, what=f"Transform {name} failing with {reason}")
    return result


def inline_transform(name: str, source: str, extra: str = "") -> str:
    indented = "\n".join("      " + line for line in source.splitlines())
    return (
        "apiVersion: platform.pequod.io/v1alpha1\nkind: Transform\n"
        f"metadata:\n  name: {name}\nspec:\n  cueRef:\n    type: inline\n    ref: |\n"
        f"{indented}\n{extra}"
    )
