"""The operator loads oras (and requests) only for OCI modules and cel-python only for CEL
expressions: about 10 MiB of resident memory that operators not using them do without
(docs/performance.md)."""

from __future__ import annotations

import subprocess
import sys


def test_the_operator_starts_without_oras_and_cel() -> None:
    probe = (
        "import sys, pequod.cli.main, pequod.cli.run_command, pequod.operator.app\n"
        "print(sorted(m for m in ('oras', 'requests', 'celpy') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert loaded == "[]"
