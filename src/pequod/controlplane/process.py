"""One component process of the control plane: started with its log in a file, stopped cleanly."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class ComponentProcess:
    """A control-plane component (etcd, kube-apiserver, ...) running as a child process."""

    def __init__(self, name: str, argv: list[str], log_path: Path, *, die_with_parent: bool):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._die_with_parent = die_with_parent
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> None:
        log = self.log_path.open("ab")
        # The kernel sends PDEATHSIG when the *thread* that forked the child ends, so it is only
        # safe from the main thread; components started elsewhere are stopped by stop() or at
        # interpreter exit (see cluster.py).
        in_main_thread = threading.current_thread() is threading.main_thread()
        preexec: Callable[[], None] | None = (
            _die_with_parent if self._die_with_parent and in_main_thread else None
        )
        try:
            self._process = subprocess.Popen(  # noqa: S603 - argv built from pinned paths
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=preexec,
            )
        finally:
            log.close()

    def exit_code(self) -> int | None:
        """The exit status if the process has exited, otherwise ``None``."""
        return self._process.poll() if self._process else None

    def stop(self, timeout: float = 10.0) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
