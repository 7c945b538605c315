"""The pinned kubectl, run against the sandbox: what a user would type, so what they see."""

from __future__ import annotations

import subprocess
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
