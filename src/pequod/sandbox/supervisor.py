"""Brings the sandbox up step by step, keeps it running, and takes it down.

The supervisor is the parent of every sandbox process (control-plane components and the
operator), which die with it. ``pequod dev up`` runs it in the foreground, or detached in a
session of its own; ``pequod dev down`` signals it."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import yaml

from pequod.api.names import OPERATOR_NAMESPACE, OPERATOR_SERVICE_ACCOUNT
from pequod.controlplane import ControlPlane
from pequod.controlplane.cluster import ControlPlaneError, free_port
from pequod.controlplane.process import ComponentProcess
from pequod.sandbox.files import INSTALL_DIRECTORIES, MANIFESTS, TRANSFORMS
from pequod.sandbox.kubectl import KubectlError, kubectl, wait_established
from pequod.sandbox.progress import Progress
from pequod.sandbox.state import SandboxRecord, SandboxState, default_state_directory
from pequod.toolchain.build import ToolchainBuildError, build_toolchain
from pequod.toolchain.locate import ToolNotFoundError, find_binary

OPERATOR_TOKEN_SECRET = "pequod-sandbox-token"
OPERATOR_RESTART_SECONDS = 5.0


class SandboxError(RuntimeError):
    """A step failed; the message names the component and carries the tail of its log."""


class Sandbox:
    def __init__(
        self,
        state: SandboxState,
        progress: Progress,
        *,
        transforms: bool = True,
        operator_arguments: tuple[str, ...] = (),
    ) -> None:
        self.state = state
        self.progress = progress
        self.transforms = transforms
        self.operator_arguments = operator_arguments
        self.plane: ControlPlane | None = None
        self.operator: ComponentProcess | None = None
        self.record = SandboxRecord(os.getpid(), "Starting", time.time())
        self._stop = threading.Event()

    @property
    def admin_kubeconfig(self) -> Path:
        return self.state.control_plane_directory / "kubeconfig"

    # -- up --------------------------------------------------------------------------------

    def up(self) -> SandboxRecord:
        """Runs every step; raises :class:`SandboxError` naming the step that failed."""
        if self.state.control_plane_directory.exists():
            shutil.rmtree(self.state.control_plane_directory)  # left by `down --keep`
        self.state.directory.mkdir(parents=True, exist_ok=True)
        self.state.write(self.record)
        try:
            self._steps()
        except (ControlPlaneError, ToolchainBuildError, KubectlError) as error:
            raise SandboxError(str(error)) from error
        # From the moment the sandbox says it is Ready (its record, then the caller's
        # "Ctrl-C stops it"), a SIGINT or SIGTERM must mean "stop cleanly", never a
        # KeyboardInterrupt or a default death between here and serve().
        self._handle_stop_signals()
        self.record.phase = "Ready"
        self.state.write(self.record)
        return self.record

    def _handle_stop_signals(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self._stop.set())

    def _steps(self) -> None:
        progress = self.progress
        with progress.step("toolchain: cue, etcd, Kubernetes, kwok (built once, then cached)"):
            build_toolchain(report=lambda message: progress.line(f"  {message}"))
        self.plane = ControlPlane(self.state.control_plane_directory, startup_timeout=120.0)
        with progress.step("control plane: etcd, kube-apiserver"):
            self.plane.start()
        self.record.kubeconfig = str(self.admin_kubeconfig)
        self.record.server = self.plane.server
        self._remember_processes()
        with progress.step("workloads: kube-controller-manager, kube-scheduler, kwok node"):
            self.plane.start_workloads()
        self._remember_processes()
        self._link_tools()
        with progress.step("Pequod: CRDs, RBAC, admission policy (manifests/)"):
            arguments = ["apply", "--server-side"]
            for directory in INSTALL_DIRECTORIES:
                arguments += ["-f", str(MANIFESTS / directory)]
            kubectl(self.admin_kubeconfig, *arguments)
            wait_established(
                self.admin_kubeconfig,
                "transforms.platform.pequod.io",
                "resourcegraphs.platform.pequod.io",
            )
        with progress.step(
            f"operator credentials: ServiceAccount {OPERATOR_NAMESPACE}/{OPERATOR_SERVICE_ACCOUNT}"
        ):
            operator_kubeconfig = self._operator_kubeconfig()
        with progress.step("operator: pequod run (as the ServiceAccount)"):
            self._start_operator(operator_kubeconfig)
        if self.transforms:
            with progress.step("Transforms: webservice (WebService), database (Database)"):
                kubectl(self.admin_kubeconfig, "apply", "-f", str(TRANSFORMS))
                try:
                    kubectl(
                        self.admin_kubeconfig,
                        "wait",
                        "--for=condition=Ready",
                        "transform/webservice",
                        "transform/database",
                        "--timeout=120s",
                        timeout=150,
                    )
                except KubectlError as error:
                    raise SandboxError(f"{error}\n{self._operator_tail()}") from error
                wait_established(
                    self.admin_kubeconfig,
                    "webservices.platform.pequod.io",
                    "databases.platform.pequod.io",
                )

    def _remember_processes(self) -> None:
        assert self.plane is not None
        self.record.process_ids = {
            **self.record.process_ids,
            **self.plane.process_ids(),
        }
        self.state.write(self.record)

    def _link_tools(self) -> None:
        """The pinned kubectl, and helm when it is built (the user guide moves a Helm release
        to Pequod), on the PATH the sandbox's environment gives."""
        self.state.bin_directory.mkdir(parents=True, exist_ok=True)
        for binary in ("kubectl", "helm"):
            link = self.state.bin_directory / binary
            link.unlink(missing_ok=True)
            try:
                link.symlink_to(find_binary(binary))
            except ToolNotFoundError:
                if binary == "kubectl":
                    raise

    def _operator_kubeconfig(self) -> Path:
        """A kubeconfig with the operator ServiceAccount's token, so the sandbox runs the
        operator with the RBAC of manifests/ (and the admission policy lets it write graphs)."""
        assert self.plane is not None
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": {
                "name": OPERATOR_TOKEN_SECRET,
                "namespace": OPERATOR_NAMESPACE,
                "annotations": {"kubernetes.io/service-account.name": OPERATOR_SERVICE_ACCOUNT},
            },
        }
        kubectl(self.admin_kubeconfig, "apply", "-f", "-", stdin=json.dumps(secret))
        token = ""
        deadline = time.monotonic() + 60
        while not token and time.monotonic() < deadline:
            found = json.loads(
                kubectl(
                    self.admin_kubeconfig,
                    "get",
                    "secret",
                    OPERATOR_TOKEN_SECRET,
                    "-n",
                    OPERATOR_NAMESPACE,
                    "-o",
                    "json",
                )
            )
            token = base64.b64decode((found.get("data") or {}).get("token", "")).decode()
            if not token:
                time.sleep(0.5)
        if not token:
            raise SandboxError(
                "the token of the operator's ServiceAccount was not issued within 60 s "
                "(kube-controller-manager's token controller)\n" + self.plane.component_logs()
            )
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "sandbox",
                    "cluster": {
                        "server": self.plane.server,
                        "certificate-authority": str(self.plane.ca_certificate),
                    },
                }
            ],
            "users": [{"name": "pequod", "user": {"token": token}}],
            "contexts": [{"name": "pequod", "context": {"cluster": "sandbox", "user": "pequod"}}],
            "current-context": "pequod",
        }
        path = self.state.directory / "operator.kubeconfig"
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return path

    def _start_operator(self, kubeconfig: Path) -> None:
        metrics_port = free_port()
        self.record.operator_log = str(self.state.operator_log)
        self.record.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        self.state.operator_log.parent.mkdir(parents=True, exist_ok=True)
        self.operator = ComponentProcess(
            "operator",
            [
                sys.executable,
                "-m",
                "pequod",
                "run",
                f"--kubeconfig={kubeconfig}",
                "--log-format=console",
                f"--metrics-bind-address=127.0.0.1:{metrics_port}",
                f"--health-probe-bind-address=127.0.0.1:{free_port()}",
                *self.operator_arguments,
            ],
            self.state.operator_log,
            die_with_parent=True,
        )
        self.operator.start()
        assert self.operator.pid is not None
        self.record.process_ids["operator"] = self.operator.pid
        self.state.write(self.record)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            code = self.operator.exit_code()
            if code is not None:
                raise SandboxError(
                    f"the operator exited with status {code}\n{self._operator_tail()}"
                )
            if "caches synced" in self.state.operator_log.read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise SandboxError(f"the operator did not sync its caches in 60 s\n{self._operator_tail()}")

    def _operator_tail(self) -> str:
        if self.operator is None:
            return ""
        return f"--- operator ({self.operator.log_path}) ---\n{self.operator.log_tail(30)}"

    # -- running ---------------------------------------------------------------------------

    def serve(self) -> None:
        """Keeps the sandbox running until SIGTERM or SIGINT; restarts the operator if it
        exits (as its Deployment would) and records a control-plane component that died.
        The signal handlers are in place since :meth:`up` returned."""
        while not self._stop.wait(1.0):
            if self.operator is not None and self.operator.exit_code() is not None:
                self.progress.line(
                    f"operator exited with status {self.operator.exit_code()}; "
                    f"restarting in {OPERATOR_RESTART_SECONDS:.0f} s "
                    f"(log: {self.operator.log_path})"
                )
                if self._stop.wait(OPERATOR_RESTART_SECONDS):
                    break
                self.operator.start()
                if self.operator.pid is not None:
                    self.record.process_ids["operator"] = self.operator.pid
                    self.state.write(self.record)
            failed = self.plane.failed_components() if self.plane else []
            if failed and self.record.phase != "Failed":
                self.record.phase = "Failed"
                self.record.message = f"{', '.join(failed)} exited; see {self.plane_logs()}"
                self.state.write(self.record)
                self.progress.line(self.record.message)

    def plane_logs(self) -> str:
        return str(self.state.control_plane_directory / "logs")

    def stop(self, *, keep: bool) -> None:
        """Stops the operator, then the control plane; removes the state unless ``keep``."""
        self.record.phase = "Stopping"
        if self.state.directory.exists():
            self.state.write(self.record)
        if self.operator is not None:
            self.operator.stop(timeout=15)
        if self.plane is not None:
            self.plane.stop()
        if keep:
            self.record.phase = "Stopped"
            self.state.write(self.record)
        else:
            remove_state(self.state)


def remove_state(state: SandboxState) -> None:
    shutil.rmtree(state.directory, ignore_errors=True)


def usage(state: SandboxState, record: SandboxRecord) -> str:
    dev = dev_command(state)
    return "\n".join(
        [
            "",
            "Pequod sandbox is ready. In your shell:",
            f"  export KUBECONFIG={record.kubeconfig}",
            f"  export PATH={state.bin_directory}:$PATH    # the pinned kubectl and helm",
            f'  (or: eval "$({dev} env)")',
            "  kubectl get transforms",
            "  kubectl apply -f examples/webservice.yaml && kubectl get ws",
            f"Operator log: {record.operator_log}",
            f"Metrics:      {record.metrics_url}",
            f"Status:       {dev} status",
            f"Stop it:      {dev} down",
            "",
        ]
    )


def dev_command(state: SandboxState) -> str:
    """How to call ``pequod dev`` again from the user's shell: pequod may live in a virtualenv
    that is not on PATH, and the state directory may not be the default one."""
    installed = Path(sys.executable).parent / "pequod"
    on_path = shutil.which("pequod")
    command = "pequod" if on_path and Path(on_path) == installed else str(installed)
    with contextlib.suppress(ValueError):
        command = str(installed.relative_to(Path.cwd())) if command != "pequod" else command
    command += " dev"
    if state.directory != default_state_directory().resolve():
        command += f" --state-dir={state.directory}"
    return command
