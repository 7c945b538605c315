"""Modules in Git repositories, through the ``git`` CLI: a branch, tag or commit is resolved
to a commit with ``git ls-remote``, and that one commit is fetched shallowly."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from pequod.delivery.oci import FetchError
from pequod.module.source import ModuleError

_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_SCHEMES = {"https", "http", "ssh", "file", "git"}


@dataclass(frozen=True)
class GitReference:
    url: str
    ref: str
    path: str | None = None

    @classmethod
    def parse(cls, text: str, *, path: str | None = None) -> GitReference:
        """``URL?ref=<branch|tag|commit>&path=<dir>`` with an https, http, ssh, git or file URL;
        ``ref`` defaults to ``main``; a ``path`` argument wins over the query's."""
        parts = urlsplit(text)
        if parts.scheme not in _SCHEMES or not (parts.netloc or parts.scheme == "file"):
            raise ModuleError(
                f"git reference {text!r}: expected an https://, ssh://, git:// or file:// URL "
                "with ?ref=<branch|tag|commit>&path=<dir>"
            )
        query = parse_qs(parts.query)
        unknown = set(query) - {"ref", "path"}
        if unknown:
            raise ModuleError(f"git reference {text!r}: unknown parameter(s) {sorted(unknown)}")
        url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        ref = query["ref"][0] if "ref" in query else "main"
        return cls(url, ref, path or (query["path"][0] if "path" in query else None))

    @property
    def pinned(self) -> bool:
        return bool(_COMMIT.match(self.ref))


@dataclass(frozen=True)
class GitCredentials:
    username: str = ""
    password: str = ""
    ssh_private_key: str = ""
    known_hosts: str = ""


class GitClient:
    def __init__(self, credentials: GitCredentials | None = None, *, timeout: float = 60.0) -> None:
        self.credentials = credentials or GitCredentials()
        self.timeout = timeout
        self.git = shutil.which("git")
        if self.git is None:
            raise FetchError("git is not installed (it is needed for git module sources)")

    def resolve(self, reference: GitReference) -> str:
        """The commit the reference names now."""
        if reference.pinned:
            return reference.ref
        output = self._run(
            "ls-remote",
            reference.url,
            f"refs/heads/{reference.ref}",
            f"refs/tags/{reference.ref}",
            f"refs/tags/{reference.ref}^{{}}",
        )
        found: dict[str, str] = {}
        for line in output.splitlines():
            commit, _, name = line.partition("\t")
            found[name] = commit
        for name in (
            f"refs/tags/{reference.ref}^{{}}",  # an annotated tag, peeled to its commit
            f"refs/tags/{reference.ref}",
            f"refs/heads/{reference.ref}",
        ):
            if name in found:
                return found[name]
        raise FetchError(
            f"{reference.url}: no branch or tag {reference.ref!r} (and it is not a 40-hex commit)"
        )

    def fetch(self, reference: GitReference, commit: str, destination: Path) -> None:
        """Checks out ``commit`` alone (depth 1) into ``destination/artifact``."""
        work = destination / "artifact"
        self._run("init", "--quiet", str(work))
        try:
            self._run("-C", str(work), "fetch", "--quiet", "--depth=1", reference.url, commit)
        except FetchError:
            # Servers that refuse to serve a commit by id: fetch the refs, then check out.
            self._run("-C", str(work), "fetch", "--quiet", reference.url, "+refs/*:refs/remotes/*")
        self._run("-C", str(work), "-c", "advice.detachedHead=false", "checkout", "--quiet", commit)
        shutil.rmtree(work / ".git")

    def _run(self, *arguments: str) -> str:
        assert self.git is not None
        with self._environment() as environment:
            try:
                completed = subprocess.run(  # noqa: S603 - git with arguments built here
                    [self.git, *arguments],
                    capture_output=True,
                    text=True,
                    timeout=self.timeout,
                    env=environment,
                    check=False,
                )
            except subprocess.TimeoutExpired as error:
                raise FetchError(
                    f"git {arguments[0]}: no answer in {self.timeout:.0f} s", transient=True
                ) from error
        if completed.returncode != 0:
            message = completed.stderr.strip().splitlines()
            detail = message[-1] if message else f"exit status {completed.returncode}"
            transient = any(
                text in completed.stderr
                for text in ("Could not resolve host", "Connection refused", "timed out")
            )
            raise FetchError(f"git {arguments[0]}: {detail}", transient=transient)
        return completed.stdout

    @contextmanager
    def _environment(self) -> Iterator[dict[str, str]]:
        """git's environment: no prompts, no user or system config, credentials passed as
        configuration through the environment (never on a command line others can read)."""
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": tempfile.gettempdir(),
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
        }
        settings: list[tuple[str, str]] = [("protocol.file.allow", "always")]
        credentials = self.credentials
        if credentials.password:
            pair = f"{credentials.username or 'git'}:{credentials.password}".encode()
            settings.append(
                ("http.extraHeader", f"Authorization: Basic {base64.b64encode(pair).decode()}")
            )
        with tempfile.TemporaryDirectory(prefix="pequod-git-") as secrets:
            if credentials.ssh_private_key:
                key = Path(secrets) / "identity"
                key.write_text(credentials.ssh_private_key.rstrip("\n") + "\n")
                key.chmod(0o600)
                command = f"ssh -i {key} -o IdentitiesOnly=yes -o BatchMode=yes"
                if credentials.known_hosts:
                    hosts = Path(secrets) / "known_hosts"
                    hosts.write_text(credentials.known_hosts)
                    command += f" -o UserKnownHostsFile={hosts} -o StrictHostKeyChecking=yes"
                else:
                    command += " -o StrictHostKeyChecking=accept-new"
                environment["GIT_SSH_COMMAND"] = command
            environment["GIT_CONFIG_COUNT"] = str(len(settings))
            for index, (key_name, value) in enumerate(settings):
                environment[f"GIT_CONFIG_KEY_{index}"] = key_name
                environment[f"GIT_CONFIG_VALUE_{index}"] = value
            yield environment
