"""Authenticated Git servers on loopback for the credential tests: git's own http-backend CGI
behind HTTP basic auth, over plain HTTP or TLS (a small threaded server in the test process,
which counts the requests and can hold one), and Debian's sshd with its own host key, an
authorized key and git-shell. Both serve the bare repositories under one directory."""

from __future__ import annotations

import base64
import getpass
import os
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pequod.controlplane.cluster import free_port
from pequod.controlplane.pki import KeyPair
from tests.delivery_harness import ServerProcess, binary

HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"
SSHD = "/usr/sbin/sshd"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    status: int
    user: str | None
    """The user whose password was right, or None."""
    authorization: str | None
    """The Authorization header as sent."""


class HttpGitServer:
    """Smart HTTP for the repositories under ``directory``, for ``users`` (name → password);
    HTTPS with ``certificate``; with ``redirect`` (a URL), every request is sent there."""

    def __init__(
        self,
        directory: Path,
        users: dict[str, str],
        *,
        certificate: KeyPair | None = None,
        redirect: str | None = None,
    ) -> None:
        self.directory = directory
        self.users = users
        self.certificate = certificate
        self.redirect = redirect
        self.requests: list[Request] = []
        self.held = threading.Event()
        """Set while an authenticated request waits for :meth:`release`."""
        self._release = threading.Event()
        self._release.set()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    def url(self, repository: str) -> str:
        scheme = "https" if self.certificate else "http"
        return f"{scheme}://127.0.0.1:{self.port}/{repository}.git"

    def start(self) -> HttpGitServer:
        backend = os.environ.get("PEQUOD_GIT_HTTP_BACKEND", HTTP_BACKEND)
        if not os.access(backend, os.X_OK):
            raise AssertionError(
                f"{backend} is missing (Debian package git; scripts/environment.sh installs it)"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._serve(self, backend)

            def do_POST(self) -> None:
                server._serve(self, backend)

            def log_message(self, format: str, *args: object) -> None:
                pass  # the requests are recorded in server.requests

        self._server = _Server(("127.0.0.1", 0), Handler)
        if self.certificate is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.certificate.certificate, self.certificate.key)
            # The handshake in the handler's thread: a client that refuses the certificate
            # then holds up no one.
            self._server.socket = context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def hold(self) -> None:
        """The next authenticated request waits (see :attr:`held`) until :meth:`release`."""
        self.held.clear()
        self._release.clear()

    def release(self) -> None:
        self._release.set()

    def count(self, *, status: int | None = None) -> int:
        with self._lock:
            return sum(1 for r in self.requests if status is None or r.status == status)

    def _authenticated(self, header: str | None) -> str | None:
        if not header or not header.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        return user if user in self.users and self.users[user] == password else None

    def _record(self, handler: BaseHTTPRequestHandler, status: int, user: str | None) -> None:
        with self._lock:
            self.requests.append(
                Request(
                    handler.command,
                    handler.path,
                    status,
                    user,
                    handler.headers.get("Authorization"),
                )
            )

    def _serve(self, handler: BaseHTTPRequestHandler, backend: str) -> None:
        body = _body(handler)
        if self.redirect is not None:
            self._record(handler, 302, None)
            handler.send_response(302)
            handler.send_header("Location", self.redirect.rstrip("/") + handler.path)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        user = self._authenticated(handler.headers.get("Authorization"))
        if user is None:
            self._record(handler, 401, None)
            handler.send_response(401)
            handler.send_header("WWW-Authenticate", 'Basic realm="pequod-test"')
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if not self._release.is_set():
            self.held.set()
            self._release.wait(60)
        path, _, query = handler.path.partition("?")
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_PROJECT_ROOT": str(self.directory),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": handler.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": handler.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": user,
            "REMOTE_ADDR": "127.0.0.1",
            "GIT_PROTOCOL": handler.headers.get("Git-Protocol", ""),
            "HTTP_CONTENT_ENCODING": handler.headers.get("Content-Encoding", ""),
        }
        completed = subprocess.run(
            [backend], input=body, env=environment, capture_output=True, check=False, timeout=60
        )
        head, _, payload = completed.stdout.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self._record(handler, status, user)
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that refused the certificate, or went away: the client says so


def _body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, by its length or in chunks (git chunks large pushes and fetches)."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0], 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


@dataclass(frozen=True)
class SshKey:
    private: str
    """OpenSSH's private key format, as ``ssh-keygen`` writes it."""
    public: str
    """One authorized_keys / known_hosts line: ``ssh-ed25519 AAAA…``."""


def ssh_key() -> SshKey:
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return SshKey(private, public)


class SshGitServer:
    """sshd on a free loopback port that lets the authorized keys run git-shell (git
    fetches and pushes, nothing else) as the user running the tests."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.user = getpass.getuser()
        self.host_key = ssh_key()
        self.server = ServerProcess("sshd", directory / "sshd.log")

    @property
    def known_hosts(self) -> str:
        """The server's line for a known_hosts file (what ``ssh-keyscan -p PORT`` prints)."""
        return f"[127.0.0.1]:{self.port} {self.host_key.public}\n"

    def url(self, repository: str) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}{self.directory}/{repository}.git"

    def authorize(self, public: str) -> None:
        shell = binary("git-shell", "PEQUOD_GIT_SHELL")
        with (self.directory / "authorized_keys").open("a") as keys:
            keys.write(f'restrict,command="{shell} -c \\"$SSH_ORIGINAL_COMMAND\\"" {public}\n')

    def start(self) -> SshGitServer:
        sshd = os.environ.get("PEQUOD_SSHD", SSHD)
        if not os.access(sshd, os.X_OK):
            raise AssertionError(
                f"{sshd} is missing (Debian package openssh-server; scripts/environment.sh "
                "installs it)"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        host_key = self.directory / "host_ed25519"
        host_key.write_text(self.host_key.private)
        host_key.chmod(0o600)
        (self.directory / "authorized_keys").touch()
        config = self.directory / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
            f"PidFile {self.directory / 'sshd.pid'}\n"
            f"AuthorizedKeysFile {self.directory / 'authorized_keys'}\n"
            f"AllowUsers {self.user}\n"
            # The test's directories are not sshd's usual root-owned ones.
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
            "PermitRootLogin prohibit-password\nLogLevel VERBOSE\n"
        )
        if os.geteuid() == 0:
            # Run as root, sshd wants its privilege separation directory (the service's
            # unit makes it; nothing does here).
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.server.start([sshd, "-D", "-e", "-f", str(config)], self._answers)
        return self

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as connection:
                return connection.recv(64).startswith(b"SSH-2.0-")
        except OSError:
            return False

    def stop(self) -> None:
        self.server.stop()

    def log(self) -> str:
        return self.server.log()
