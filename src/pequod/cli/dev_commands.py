"""``pequod dev up|status|down|demo``: the local sandbox."""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pequod.sandbox.demo import run_demo
from pequod.sandbox.kubectl import KubectlError, kubectl
from pequod.sandbox.progress import Progress
from pequod.sandbox.state import SandboxState, default_state_directory, process_alive, terminate
from pequod.sandbox.supervisor import Sandbox, SandboxError, remove_state, usage

DETACHED_START_TIMEOUT = 45 * 60.0
"""A cold toolchain build is part of the first start (about 12 minutes on two cores)."""


def register(commands: Any) -> None:
    dev = commands.add_parser("dev", help="a local sandbox: control plane, operator, Transforms")
    dev.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where the sandbox keeps its files (default: $PEQUOD_DEV_HOME, else "
        "$XDG_STATE_HOME/pequod/dev)",
    )
    actions = dev.add_subparsers(dest="action", metavar="ACTION", required=True)
    up = actions.add_parser("up", help="start the sandbox")
    up.add_argument("--detach", "-d", action="store_true", help="run in the background")
    up.add_argument(
        "--keep", action="store_true", help="keep the state when stopped (foreground only)"
    )
    up.add_argument(
        "--no-transforms", action="store_true", help="do not apply examples/transforms.yaml"
    )
    up.add_argument("--supervise", action="store_true", help=argparse.SUPPRESS)
    up.set_defaults(run=_up)
    status = actions.add_parser("status", help="is the sandbox running, and how is it")
    status.set_defaults(run=_status)
    down = actions.add_parser("down", help="stop the sandbox and remove its state")
    down.add_argument("--keep", action="store_true", help="keep logs and data for inspection")
    down.set_defaults(run=_down)
    environment = actions.add_parser(
        "env", help='print the shell exports for the sandbox: eval "$(pequod dev env)"'
    )
    environment.set_defaults(run=_env)
    demo = actions.add_parser(
        "demo", help="start the sandbox if needed, create the example instances, show them"
    )
    demo.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for Ready")
    demo.set_defaults(run=_demo)


def _state(arguments: argparse.Namespace) -> SandboxState:
    return SandboxState((arguments.state_dir or default_state_directory()).resolve())


def _up(arguments: argparse.Namespace) -> int:
    state = _state(arguments)
    running = state.running()
    if running is not None:
        print(
            f"pequod dev up: a sandbox is already running in {state.directory} "
            f"(pid {running.supervisor_pid}, {running.phase}); "
            "see `pequod dev status`, or stop it with `pequod dev down`",
            file=sys.stderr,
        )
        return 1
    if arguments.detach:
        return start_detached(state, transforms=not arguments.no_transforms)
    return _foreground(
        state,
        keep=arguments.keep or arguments.supervise,
        transforms=not arguments.no_transforms,
        interactive=not arguments.supervise,
    )


def _foreground(state: SandboxState, *, keep: bool, transforms: bool, interactive: bool) -> int:
    progress = Progress()
    sandbox = Sandbox(state, progress, transforms=transforms)
    try:
        record = sandbox.up()
    except (SandboxError, KeyboardInterrupt) as error:
        progress.line(f"pequod dev up failed: {error}")
        sandbox.record.phase = "Failed"
        sandbox.record.message = str(error).splitlines()[0] if str(error) else "interrupted"
        sandbox.stop(keep=True)
        print(f"logs kept in {state.directory}", file=sys.stderr)
        return 1
    print(usage(state, record), flush=True)
    if interactive:
        progress.line("running; Ctrl-C (or `pequod dev down`) stops it")
    try:
        sandbox.serve()
    finally:
        progress.line("stopping")
        sandbox.stop(keep=keep)
        progress.line("stopped")
    return 0


def start_detached(state: SandboxState, *, transforms: bool = True) -> int:
    """Starts a supervisor in a session of its own and relays its progress until Ready."""
    state.directory.mkdir(parents=True, exist_ok=True)
    state.supervisor_log.parent.mkdir(parents=True, exist_ok=True)
    state.record_path.unlink(missing_ok=True)
    with state.supervisor_log.open("wb") as log:
        command = [
            sys.executable,
            "-m",
            "pequod",
            "dev",
            f"--state-dir={state.directory}",
            "up",
            "--supervise",
            *([] if transforms else ["--no-transforms"]),
        ]
        child = subprocess.Popen(  # noqa: S603 - this same program
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    position = 0
    deadline = time.monotonic() + DETACHED_START_TIMEOUT
    while time.monotonic() < deadline:
        position = _relay(state.supervisor_log, position)
        record = state.read()
        if record is not None and record.phase == "Ready" and record.supervisor_pid == child.pid:
            time.sleep(0.2)
            _relay(state.supervisor_log, position)
            return 0
        if child.poll() is not None:
            _relay(state.supervisor_log, position)
            print(
                f"pequod dev up: the sandbox did not start (exit status {child.returncode}); "
                f"logs in {state.directory}",
                file=sys.stderr,
            )
            return 1
        time.sleep(0.3)
    terminate(child.pid)
    print(f"pequod dev up: not ready after {DETACHED_START_TIMEOUT:.0f} s", file=sys.stderr)
    return 1


def _relay(path: Path, position: int) -> int:
    with contextlib.suppress(FileNotFoundError), path.open("rb") as log:
        log.seek(position)
        chunk = log.read()
        if chunk:
            sys.stdout.write(chunk.decode(errors="replace"))
            sys.stdout.flush()
        return position + len(chunk)
    return position


def _status(arguments: argparse.Namespace) -> int:
    state = _state(arguments)
    record = state.running()
    if record is None:
        print(f"no sandbox running in {state.directory}; start one with `pequod dev up`")
        return 1
    uptime = time.time() - record.started_at
    print(f"sandbox:    {record.phase} (pid {record.supervisor_pid}, up {uptime:.0f} s)")
    print(f"directory:  {state.directory}")
    if record.message:
        print(f"problem:    {record.message}")
    for name, pid in sorted(record.process_ids.items()):
        print(f"  {name:<24} pid {pid:<8} {'running' if process_alive(pid) else 'EXITED'}")
    if record.kubeconfig:
        print(f"kubeconfig: {record.kubeconfig}")
        print(f"operator:   log {record.operator_log}, metrics {record.metrics_url}")
        print(_transforms(Path(record.kubeconfig)))
    healthy = record.phase == "Ready" and all(process_alive(p) for p in record.process_ids.values())
    return 0 if healthy else 1


def _transforms(kubeconfig: Path) -> str:
    try:
        listing = json.loads(kubectl(kubeconfig, "get", "transforms", "-o", "json", timeout=20))
    except (KubectlError, json.JSONDecodeError) as error:
        return f"transforms: cannot list ({error})"
    lines = ["transforms:"]
    for item in listing.get("items", []):
        conditions = {c["type"]: c for c in item.get("status", {}).get("conditions") or []}
        ready = conditions.get("Ready", {})
        lines.append(
            f"  {item['metadata']['name']:<24} {item['spec'].get('kind', ''):<16} "
            f"Ready={ready.get('status', 'Unknown')} {ready.get('reason', '')}"
        )
    return "\n".join(lines)


def _env(arguments: argparse.Namespace) -> int:
    state = _state(arguments)
    record = state.running()
    if record is None or not record.kubeconfig:
        print(f"pequod dev env: no sandbox running in {state.directory}", file=sys.stderr)
        return 1
    print(f"export KUBECONFIG={shlex.quote(record.kubeconfig)}")
    print(f'export PATH={shlex.quote(str(state.bin_directory))}:"$PATH"')
    return 0


def _down(arguments: argparse.Namespace) -> int:
    state = _state(arguments)
    record = state.read()
    if record is None:
        if state.directory.exists() and not arguments.keep:
            remove_state(state)
        print(f"no sandbox in {state.directory}")
        return 0
    if process_alive(record.supervisor_pid):
        terminate(record.supervisor_pid)
        deadline = time.monotonic() + 60
        while process_alive(record.supervisor_pid) and time.monotonic() < deadline:
            time.sleep(0.2)
    # Whatever the supervisor could not stop (it was killed, say) is stopped here.
    for pid in record.process_ids.values():
        if process_alive(pid) and _belongs_to(pid, state):
            terminate(pid, 9)
    if arguments.keep:
        print(f"sandbox stopped; state kept in {state.directory}")
    else:
        remove_state(state)
        print("sandbox stopped and removed")
    return 0


def _belongs_to(pid: int, state: SandboxState) -> bool:
    """Guards against a recycled process id: the process must mention the sandbox directory."""
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return str(state.directory) in command_line


def _demo(arguments: argparse.Namespace) -> int:
    state = _state(arguments)
    if state.running() is None:
        code = start_detached(state)
        if code != 0:
            return code
    record = state.running()
    if record is None or record.phase != "Ready":
        print("pequod dev demo: the sandbox is not Ready; see `pequod dev status`", file=sys.stderr)
        return 1
    return run_demo(state, record, timeout=arguments.timeout)
