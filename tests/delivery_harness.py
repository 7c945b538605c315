"""Real module servers on loopback for the delivery tests: Debian's docker-registry (the
CNCF distribution registry), optionally behind htpasswd, and `git daemon` (the authenticated
Git servers are in :mod:`tests.git_servers`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import bcrypt

from pequod.controlplane.cluster import free_port
from tests.operator_harness import Kubectl, condition, wait_for


class ServerProcess:
    """A server a test runs as a child process, its output in ``log_path``: started, waited
    for until ``ready()`` answers (30 s at most; an exit fails at once), stopped."""

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, command: list[str], ready: Callable[[], bool]) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.process.poll() is None:
            if ready():
                return
            time.sleep(0.1)
        raise AssertionError(f"{self.name} did not start:\n{self.log()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except FileNotFoundError:
            return ""


def binary(name: str, override: str) -> str:
    found = os.environ.get(override) or shutil.which(name)
    if not found:
        raise AssertionError(
            f"{name} is not installed (Debian package {name}; scripts/environment.sh installs it)"
        )
    return found


class Registry:
    def __init__(self, directory: Path, *, users: dict[str, str] | None = None) -> None:
        self.directory = directory
        self.users = users or {}
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.server = ServerProcess("docker-registry", directory / "registry.log")

    def start(self) -> Registry:
        self.directory.mkdir(parents=True, exist_ok=True)
        auth = ""
        if self.users:
            htpasswd = self.directory / "htpasswd"
            htpasswd.write_text(
                "".join(
                    f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode()}\n"
                    for user, password in self.users.items()
                )
            )
            auth = f"auth:\n  htpasswd:\n    realm: pequod-test\n    path: {htpasswd}\n"
        config = self.directory / "config.yml"
        config.write_text(
            "version: 0.1\nlog:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.directory / 'data'}\n"
            "  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n{auth}"
        )
        self.server.start(
            [binary("docker-registry", "PEQUOD_DOCKER_REGISTRY"), "serve", str(config)],
            self._answers,
        )
        return self

    def _answers(self) -> bool:
        try:
            urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2)
        except urllib.error.HTTPError:
            return True  # 401: up, and asking for credentials
        except OSError:
            return False
        return True

    def stop(self) -> None:
        self.server.stop()

    def log(self) -> str:
        return self.server.log()


class GitServer:
    """`git daemon` serving bare repositories under ``directory`` over git://."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.server = ServerProcess("git daemon", directory / "daemon.log")

    def url(self, repository: str) -> str:
        return f"git://127.0.0.1:{self.port}/{repository}.git"

    def start(self) -> GitServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.server.start(
            [
                binary("git", "PEQUOD_GIT"),
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                f"--base-path={self.directory}",
                str(self.directory),
            ],
            self._answers,
        )
        return self

    def _answers(self) -> bool:
        probe = subprocess.run(
            ["git", "ls-remote", f"git://127.0.0.1:{self.port}/none.git"],
            capture_output=True,
            text=True,
            check=False,
        )
        return "Connection refused" not in probe.stderr

    def stop(self) -> None:
        self.server.stop()


class GitHost(Protocol):
    """A server of the bare repositories under ``directory``."""

    directory: Path

    def url(self, repository: str) -> str: ...


class Repository:
    """A bare repository on the server and a working copy to commit modules into."""

    def __init__(self, server: GitHost, name: str, work: Path) -> None:
        self.server = server
        self.bare = server.directory / f"{name}.git"
        self.work = work
        self.url = server.url(name)
        git("init", "--quiet", "--bare", "--initial-branch=main", str(self.bare))
        git("init", "--quiet", "--initial-branch=main", str(work))

    def commit(self, files: dict[str, str], message: str, *, tag: str | None = None) -> str:
        for name, content in files.items():
            target = self.work / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
        git("-C", str(self.work), "add", "--all")
        git("-C", str(self.work), "commit", "--quiet", "-m", message)
        if tag:
            git("-C", str(self.work), "tag", "--annotate", "-m", tag, tag)
        git("-C", str(self.work), "push", "--quiet", "--tags", str(self.bare), "main")
        return git("-C", str(self.work), "rev-parse", "HEAD").strip()


def git(*arguments: str) -> str:
    environment = {
        **os.environ,
        "GIT_AUTHOR_NAME": "Pequod Tests",
        "GIT_AUTHOR_EMAIL": "tests@pequod.invalid",
        "GIT_COMMITTER_NAME": "Pequod Tests",
        "GIT_COMMITTER_EMAIL": "tests@pequod.invalid",
    }
    return subprocess.run(
        ["git", *arguments], capture_output=True, text=True, check=True, env=environment
    ).stdout


# -- what the tests look at -----------------------------------------------------------------


def module_fetched(kubectl: Kubectl, name: str, status: str) -> dict[str, Any]:
    """The Transform once its ModuleFetched condition has ``status``."""

    def probe() -> dict[str, Any] | None:
        found = kubectl.get("transform", name)
        fetched = condition(found, "ModuleFetched")
        return found if fetched and fetched["status"] == status else None

    result: dict[str, Any] = wait_for(probe, what=f"{name} ModuleFetched={status}")
    return result


def instance(kind: str, name: str, namespace: str, spec: str) -> str:
    return (
        f"apiVersion: platform.pequod.io/v1alpha1\nkind: {kind}\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n{spec}"
    )


def graph_nodes(kubectl: Kubectl, graph: str, namespace: str) -> list[str]:
    found = wait_for(lambda: kubectl.get("resourcegraph", graph, "-n", namespace), what=graph)
    return [n["id"] for n in found["spec"]["nodes"]]
