"""The pinned kubectl, run against the sandbox: what a user would type, so what they see."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from pequod.toolchain.locate import find_binary


class KubectlError(RuntimeError):
    pass


def kubectl(
    kubeconfig: Path, *arguments: str, stdin: str | None = None, timeout: float = 120.0
) -> str:
    """Runs kubectl; returns its output, or raises with the command and its error output."""
    command = [str(find_binary("kubectl")), f"--kubeconfig={kubeconfig}", *arguments]
    try:
        completed = subprocess.run(  # noqa: S603 - the pinned kubectl, arguments built here
            command,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise KubectlError(
            f"kubectl {' '.join(arguments)}: no answer in {timeout:.0f} s"
        ) from error
    if completed.returncode != 0:
        raise KubectlError(f"kubectl {' '.join(arguments)}: {completed.stderr.strip()}")
    return completed.stdout


def wait_established(kubeconfig: Path, *crds: str, timeout: float = 60.0) -> None:
    """Waits until every named CRD is Established. Polled rather than ``kubectl wait``, which
    fails at once ("accessor error") on a CRD so new that its conditions are still null."""
    deadline = time.monotonic() + timeout
    for name in crds:
        while True:
            status = kubectl(
                kubeconfig,
                "get",
                f"crd/{name}",
                "-o",
                'jsonpath={.status.conditions[?(@.type=="Established")].status}',
            )
            if status.strip() == "True":
                break
            if time.monotonic() > deadline:
                raise KubectlError(f"CRD {name} not Established within {timeout:.0f} s")
            time.sleep(0.2)
