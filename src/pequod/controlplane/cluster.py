"""Starts, restarts and stops a local control plane made of the pinned toolchain's binaries."""

from __future__ import annotations

import atexit
import base64
import json
import shutil
import socket
import ssl
import tempfile
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from pequod.controlplane.kubeconfig import write_kubeconfig
from pequod.controlplane.pki import (
    CertificateAuthority,
    Identity,
    KeyPair,
    write_service_account_keys,
)
from pequod.controlplane.process import ComponentProcess
from pequod.toolchain.locate import find_binary

SERVICE_CIDR = "10.0.0.0/16"
POD_CIDR = "10.244.0.0/16"
"""Pod IPs kwok hands out: apart from the Services', and room for thousands of pods."""
NODE_IP = "10.244.0.1"
KWOK_NODE_NAME = "kwok-node-0"
STORAGE_CLASS_NAME = "standard"
_ADMIN = Identity("admin", "pequod-admin", ("system:masters",))
_CONTROLLER_MANAGER = Identity("kube-controller-manager", "system:kube-controller-manager")
_SCHEDULER = Identity("kube-scheduler", "system:kube-scheduler")
_KWOK = Identity("kwok", "kwok", ("system:masters",))


class ControlPlaneError(RuntimeError):
    """A component did not start or stopped unexpectedly; the message carries its log tail."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


_RUNNING: weakref.WeakSet[ControlPlane] = weakref.WeakSet()


@atexit.register
def _stop_running_control_planes() -> None:
    for plane in list(_RUNNING):
        if plane.die_with_parent:
            plane.stop()


class ControlPlane:
    """etcd + kube-apiserver on loopback, plus the workload components when asked.

    Use as a context manager or call :meth:`start` and :meth:`stop`. Everything lives in
    ``directory`` (a new temporary directory unless given): certificates, etcd data, component
    logs and ``kubeconfig`` (admin, ``system:masters``).
    """

    def __init__(
        self,
        directory: Path | None = None,
        *,
        die_with_parent: bool = True,
        startup_timeout: float = 90.0,
        watch_cache: bool = True,
    ) -> None:
        self._owns_directory = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="pequod-controlplane-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.die_with_parent = die_with_parent
        self.watch_cache = watch_cache
        self._startup_timeout = startup_timeout
        self._components: dict[str, ComponentProcess] = {}
        self.etcd_url = ""
        self.server = ""
        self.kubeconfig = self.directory / "kubeconfig"
        self._ca: CertificateAuthority | None = None
        self._admin: KeyPair | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Starts etcd and kube-apiserver and waits until the API server is ready."""
        _RUNNING.add(self)
        try:
            self._write_pki()
            self._start_etcd()
            self._start_apiserver()
        except BaseException:
            self.stop()
            raise

    def start_workloads(self) -> None:
        """Adds kube-controller-manager, kube-scheduler and kwok with one fake Node, and a
        default StorageClass whose claims kube-controller-manager provisions as hostPath
        volumes (under /tmp/hostpath_pv), so claims bind as they would in a cluster
        (idempotent)."""
        if "kwok" in self._components:
            return
        try:
            self._start_controller_manager()
            self._start_scheduler()
            self._start_kwok()
            self._create_kwok_node()
            self._create_storage_class()
        except BaseException:
            self.stop()
            raise

    @property
    def has_workloads(self) -> bool:
        return "kwok" in self._components

    @property
    def ca_certificate(self) -> Path:
        """The cluster CA's certificate (what a kubeconfig's certificate-authority names)."""
        assert self._ca is not None, "start() first"
        return self._ca.pair.certificate

    def process_ids(self) -> dict[str, int]:
        return {
            name: process.pid
            for name, process in self._components.items()
            if process.pid is not None
        }

    def failed_components(self) -> list[str]:
        """Components that have exited (a running control plane has none)."""
        return [name for name, p in self._components.items() if p.exit_code() is not None]

    def stop(self) -> None:
        """Stops every component, newest first; removes the directory if this object made it."""
        for name in reversed(list(self._components)):
            self._components.pop(name).stop()
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def restart_apiserver(self) -> None:
        """Stops kube-apiserver and starts it again on the same port with the same flags."""
        apiserver = self._components["kube-apiserver"]
        apiserver.stop()
        apiserver.start()
        self._wait("kube-apiserver", self._apiserver_ready)

    # -- etcd maintenance (for tests of watch recovery after 410 Gone) ---------------------

    def etcd_revision(self) -> int:
        """The current etcd revision."""
        response = self._etcd_call("/v3/kv/range", {"key": base64.b64encode(b"/").decode()})
        return int(response["header"]["revision"])

    def compact_etcd(self, revision: int | None = None) -> int:
        """Compacts etcd up to ``revision`` (default: the current one) and returns it.

        Watches that resume from an older resourceVersion then get ``410 Gone``.
        """
        target = revision if revision is not None else self.etcd_revision()
        self._etcd_call("/v3/kv/compaction", {"revision": str(target), "physical": True})
        return target

    # -- diagnostics -----------------------------------------------------------------------

    def component_logs(self, lines: int = 30) -> str:
        """The tail of every component's log, for failure messages."""
        return "\n".join(
            f"--- {name} ({process.log_path}) ---\n{process.log_tail(lines)}"
            for name, process in self._components.items()
        )

    def api_request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request to the API server as the admin; returns the decoded JSON answer."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.server + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, context=self._admin_tls(), timeout=10) as answer:
            return json.loads(answer.read() or b"null")

    # -- internals -------------------------------------------------------------------------

    def _write_pki(self) -> None:
        pki = self.directory / "pki"
        self._ca = CertificateAuthority(pki)
        self._serving = self._ca.issue_serving(
            "kube-apiserver",
            [
                "127.0.0.1",
                "10.0.0.1",
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
        )
        self._service_account = write_service_account_keys(pki)
        self._admin = self._ca.issue_client(_ADMIN)

    def _component(self, name: str, argv: list[str]) -> ComponentProcess:
        logs = self.directory / "logs"
        logs.mkdir(exist_ok=True)
        process = ComponentProcess(
            name, argv, logs / f"{name}.log", die_with_parent=self.die_with_parent
        )
        self._components[name] = process
        process.start()
        return process

    def _start_etcd(self) -> None:
        client_port, peer_port = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        self._component(
            "etcd",
            [
                str(find_binary("etcd")),
                "--name=default",
                f"--data-dir={self.directory / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        self._wait("etcd", self._etcd_ready)

    def _start_apiserver(self) -> None:
        assert self._ca is not None
        port = free_port()
        self.server = f"https://127.0.0.1:{port}"
        self._component(
            "kube-apiserver",
            [
                str(find_binary("kube-apiserver")),
                f"--etcd-servers={self.etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--cert-dir={self.directory / 'apiserver'}",
                f"--tls-cert-file={self._serving.certificate}",
                f"--tls-private-key-file={self._serving.key}",
                f"--client-ca-file={self._ca.pair.certificate}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={self._service_account.certificate}",
                f"--service-account-signing-key-file={self._service_account.key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                "--profiling=false",
                f"--watch-cache={'true' if self.watch_cache else 'false'}",
                "--v=1",
            ],
        )
        write_kubeconfig(
            self.kubeconfig,
            server=self.server,
            ca_certificate=self._ca.pair.certificate,
            client=self._admin_pair,
            context="pequod-local",
        )
        self._wait("kube-apiserver", self._apiserver_ready)

    def _component_kubeconfig(self, identity: Identity) -> Path:
        assert self._ca is not None
        return write_kubeconfig(
            self.directory / f"{identity.name}.kubeconfig",
            server=self.server,
            ca_certificate=self._ca.pair.certificate,
            client=self._ca.issue_client(identity),
            context=identity.name,
        )

    def _start_controller_manager(self) -> None:
        assert self._ca is not None
        self._component(
            "kube-controller-manager",
            [
                str(find_binary("kube-controller-manager")),
                f"--kubeconfig={self._component_kubeconfig(_CONTROLLER_MANAGER)}",
                "--secure-port=0",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={self._service_account.key}",
                f"--root-ca-file={self._ca.pair.certificate}",
                f"--cluster-signing-cert-file={self._ca.pair.certificate}",
                f"--cluster-signing-key-file={self._ca.key_path}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--controllers=*,-nodeipam,-cloud-node-lifecycle,-service,-route",
                "--enable-hostpath-provisioner=true",
                # Client-side rate limits for a machine-local API server (the defaults, 20/s,
                # make a thousand Deployments take minutes to become Available).
                "--kube-api-qps=200",
                "--kube-api-burst=400",
                "--concurrent-deployment-syncs=10",
                "--concurrent-replicaset-syncs=10",
                "--v=1",
            ],
        )

    def _start_scheduler(self) -> None:
        self._component(
            "kube-scheduler",
            [
                str(find_binary("kube-scheduler")),
                f"--kubeconfig={self._component_kubeconfig(_SCHEDULER)}",
                "--secure-port=0",
                "--leader-elect=false",
                "--v=1",
            ],
        )

    def _start_kwok(self) -> None:
        self._component(
            "kwok",
            [
                str(find_binary("kwok")),
                f"--kubeconfig={self._component_kubeconfig(_KWOK)}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--manage-nodes-with-label-selector=",
                "--manage-single-node=",
                f"--cidr={POD_CIDR}",
                f"--node-ip={NODE_IP}",
                "--node-lease-duration-seconds=40",
                f"--server-address=127.0.0.1:{free_port()}",
            ],
        )

    def _create_kwok_node(self) -> None:
        self.api_request(
            "POST",
            "/api/v1/nodes",
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": KWOK_NODE_NAME,
                    "annotations": {
                        "kwok.x-k8s.io/node": "fake",
                        "node.alpha.kubernetes.io/ttl": "0",
                    },
                    "labels": {
                        "kubernetes.io/hostname": KWOK_NODE_NAME,
                        "kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "type": "kwok",
                    },
                },
                "status": {
                    "allocatable": {"cpu": "1000", "memory": "4Ti", "pods": "5000"},
                    "capacity": {"cpu": "1000", "memory": "4Ti", "pods": "5000"},
                },
            },
        )

        def node_ready() -> bool:
            node = self.api_request("GET", f"/api/v1/nodes/{KWOK_NODE_NAME}")
            conditions = node.get("status", {}).get("conditions") or []
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

        self._wait("kwok", node_ready)

    def _create_storage_class(self) -> None:
        self.api_request(
            "POST",
            "/apis/storage.k8s.io/v1/storageclasses",
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": STORAGE_CLASS_NAME,
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                },
                "provisioner": "kubernetes.io/host-path",
                "reclaimPolicy": "Delete",
                "volumeBindingMode": "Immediate",
            },
        )

    @property
    def _admin_pair(self) -> KeyPair:
        assert self._admin is not None
        return self._admin

    def _admin_tls(self) -> ssl.SSLContext:
        assert self._ca is not None
        context = ssl.create_default_context(cafile=str(self._ca.pair.certificate))
        context.load_cert_chain(str(self._admin_pair.certificate), str(self._admin_pair.key))
        return context

    def _etcd_call(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            self.etcd_url + path, data=json.dumps(body).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    def _etcd_ready(self) -> bool:
        with urllib.request.urlopen(self.etcd_url + "/health", timeout=2) as answer:
            return bool(json.loads(answer.read()).get("health") == "true")

    def _apiserver_ready(self) -> bool:
        request = urllib.request.Request(self.server + "/readyz")
        with urllib.request.urlopen(request, context=self._admin_tls(), timeout=5) as answer:
            return bool(answer.status == 200)

    def _wait(self, name: str, probe: Callable[[], bool]) -> None:
        """Polls ``probe`` until it holds; fails with the logs if a component exits or times out."""
        deadline = time.monotonic() + self._startup_timeout
        last_error = "not ready"
        while time.monotonic() < deadline:
            for component in self._components.values():
                code = component.exit_code()
                if code is not None:
                    raise ControlPlaneError(
                        f"{component.name} exited with status {code} while waiting for {name}\n"
                        + self.component_logs()
                    )
            try:
                if probe():
                    return
            except (OSError, urllib.error.URLError, ValueError, KeyError) as error:
                last_error = str(error)
            time.sleep(0.2)
        raise ControlPlaneError(
            f"{name} not ready after {self._startup_timeout:.0f} s ({last_error})\n"
            + self.component_logs()
        )
