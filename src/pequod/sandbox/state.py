"""Where a sandbox keeps its files, and the record of a running one (``sandbox.json``)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from dataclasses import asdict, dataclass, field
from pathlib import Path

STATE_FILE = "sandbox.json"


def default_state_directory() -> Path:
    """``$PEQUOD_DEV_HOME``, else ``$XDG_STATE_HOME/pequod/dev`` (``~/.local/state/...``)."""
    configured = os.environ.get("PEQUOD_DEV_HOME")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "pequod" / "dev"


@dataclass
class SandboxRecord:
    """What ``status`` and ``down`` need to know about a sandbox started by ``up``."""

    supervisor_pid: int
    phase: str  # Starting, Ready, Stopping, Failed
    started_at: float
    kubeconfig: str = ""
    server: str = ""
    operator_log: str = ""
    metrics_url: str = ""
    message: str = ""
    process_ids: dict[str, int] = field(default_factory=dict)


class SandboxState:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def record_path(self) -> Path:
        return self.directory / STATE_FILE

    @property
    def control_plane_directory(self) -> Path:
        return self.directory / "control-plane"

    @property
    def operator_log(self) -> Path:
        return self.directory / "logs" / "operator.log"

    @property
    def supervisor_log(self) -> Path:
        return self.directory / "logs" / "sandbox.log"

    @property
    def bin_directory(self) -> Path:
        return self.directory / "bin"

    def read(self) -> SandboxRecord | None:
        try:
            data = json.loads(self.record_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return SandboxRecord(**data)

    def write(self, record: SandboxRecord) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.record_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(record), indent=2) + "\n")
        temporary.replace(self.record_path)

    def running(self) -> SandboxRecord | None:
        """The record of a sandbox whose supervisor is alive, else None."""
        record = self.read()
        if record is None or not process_alive(record.supervisor_pid):
            return None
        return record


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not reaped) is not alive for our purposes.
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        if fields and fields[0] == "Z":
            return False
    return True


def terminate(pid: int, sig: int = signal.SIGTERM) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)
