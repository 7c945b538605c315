"""Modules in Git repositories, through the ``git`` CLI: a branch, tag or commit is resolved
to a commit with ``git ls-remote``, and that one commit is fetched shallowly.

Credentials (a username and password or token and a CA certificate for HTTP(S), a private
key and known hosts for SSH) reach git through files in a private temporary directory, never
through a command line or the URL; SSH host keys are always checked; git never prompts;
failures are reported in words that name the remedy and never the secret."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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
        shown = _without_password(text)
        if parts.scheme not in _SCHEMES or not (parts.netloc or parts.scheme == "file"):
            raise ModuleError(
                f"git reference {shown!r}: expected an https://, ssh://, git:// or file:// URL "
                "with ?ref=<branch|tag|commit>&path=<dir>"
            )
        if parts.password is not None:
            # The URL is shown in the status and the logs: a secret in it would be too.
            raise ModuleError(
                f"git reference {shown!r}: a password or token in the URL would be shown in "
                "the status; put it in the Secret named by pullSecretRef"
            )
        query = parse_qs(parts.query)
        unknown = set(query) - {"ref", "path"}
        if unknown:
            raise ModuleError(f"git reference {shown!r}: unknown parameter(s) {sorted(unknown)}")
        url = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        ref = query["ref"][0] if "ref" in query else "main"
        return cls(url, ref, path or (query["path"][0] if "path" in query else None))

    @property
    def pinned(self) -> bool:
        return bool(_COMMIT.match(self.ref))


@dataclass(frozen=True)
class GitCredentials:
    username: str = ""
    password: str = field(default="", repr=False)
    ssh_private_key: str = field(default="", repr=False)
    known_hosts: str = ""
    ca_certificate: str = ""
    """PEM: the CA (or CAs) an HTTPS server's certificate must be signed by, instead of the
    system's."""

    @property
    def http(self) -> bool:
        return bool(self.password)


class GitAccessRefused(FetchError):
    """The server refused the credentials or asked for some, or the server is not trusted
    (its host key or certificate): asking again, or another way, cannot help."""


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
            reference,
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
        self._run(reference, "init", "--quiet", str(work))
        try:
            self._run(
                reference, "-C", str(work), "fetch", "--quiet", "--depth=1", reference.url, commit
            )
        except GitAccessRefused:
            raise
        except FetchError:
            # Servers that refuse to serve a commit by id: fetch the refs, then check out.
            everything = "+refs/*:refs/remotes/*"
            self._run(reference, "-C", str(work), "fetch", "--quiet", reference.url, everything)
        self._run(
            reference,
            "-C",
            str(work),
            "-c",
            "advice.detachedHead=false",
            "checkout",
            "--quiet",
            commit,
        )
        shutil.rmtree(work / ".git")

    def _run(self, reference: GitReference, *arguments: str) -> str:
        assert self.git is not None
        command = next(a for a in arguments if a in _COMMANDS)
        with self._environment(reference) as environment:
            # A session of its own: on a timeout, git's helpers (ssh, git-remote-http) go too.
            process = subprocess.Popen(  # noqa: S603 - git with arguments built here
                [self.git, *arguments],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=environment,
                start_new_session=True,
            )
            try:
                stdout, stderr = process.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired as error:
                os.killpg(process.pid, signal.SIGKILL)
                process.communicate()
                raise FetchError(
                    f"git {command} {reference.url}: no answer in {self.timeout:.0f} s",
                    transient=True,
                ) from error
        if process.returncode != 0:
            raise self._failure(reference, command, stderr, process.returncode)
        return stdout

    def _failure(
        self, reference: GitReference, command: str, stderr: str, status: int
    ) -> FetchError:
        """What went wrong, in words that say what to change; never the password."""
        credentials = self.credentials
        url = reference.url
        if any(text in stderr for text in _HOST_KEY_REFUSED):
            parts = urlsplit(url)
            return GitAccessRefused(
                f"{url}: the SSH host key of {parts.hostname} is not known or has changed: put "
                "the server's key in the pull secret's known_hosts (what "
                f"`ssh-keyscan -p {parts.port or 22} {parts.hostname}` prints, once checked)"
            )
        if any(text in stderr for text in _KEY_UNREADABLE) and credentials.ssh_private_key:
            return GitAccessRefused(
                "the pull secret's ssh-privatekey is not a private key OpenSSH can read "
                "without a passphrase"
            )
        if "Permission denied (publickey" in stderr:
            return GitAccessRefused(
                f"{url}: the SSH server refused the pull secret's ssh-privatekey"
                if credentials.ssh_private_key
                else f"{url}: the SSH server asks for a key: name a Secret with "
                "ssh-privatekey (and known_hosts) in pullSecretRef"
            )
        if any(text in stderr for text in _CERTIFICATE_REFUSED):
            return GitAccessRefused(
                f"{url}: the server's certificate is not signed by the pull secret's ca.crt"
                if credentials.ca_certificate
                else f"{url}: the server's certificate is not signed by a CA the operator "
                "trusts: put the CA's certificate in the pull secret's ca.crt"
            )
        asked = _ASKED_FOR.search(stderr)
        if asked and credentials.http:
            # git was asked for credentials the helper does not give: by a server the
            # reference's redirected it to.
            return GitAccessRefused(
                f"{url}: the server sent git to {asked.group(1)}, which asks for credentials; "
                "the pull secret's are given to the reference's server alone"
            )
        if any(text in stderr for text in _HTTP_REFUSED):
            return GitAccessRefused(
                f"{url}: the server refused the pull secret's username and password (or token)"
                if credentials.http
                else f"{url}: the server asks for credentials: name a Secret with username and "
                "password (or token) in pullSecretRef"
            )
        lines = [line.strip() for line in stderr.splitlines() if line.strip()]
        fatal = [line for line in lines if line.startswith(("fatal:", "error:", "ssh:"))]
        detail = (fatal or lines or [f"exit status {status}"])[0]
        if credentials.password.strip():
            detail = detail.replace(credentials.password.strip(), "***")
        transient = any(text in stderr for text in _TRANSIENT)
        return FetchError(f"git {command} {url}: {detail}", transient=transient)

    @contextmanager
    def _environment(self, reference: GitReference) -> Iterator[dict[str, str]]:
        """git's environment: no prompts, no user or system config, English messages, and
        the credentials in files of a private directory that goes when git is done."""
        with tempfile.TemporaryDirectory(prefix="pequod-git-") as private:  # mode 0700
            directory = Path(private)
            environment = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": private,
                "LC_ALL": "C",  # failures are recognized by git's and ssh's messages
                "GIT_TERMINAL_PROMPT": "0",
                "GIT_CONFIG_NOSYSTEM": "1",
                "GIT_CONFIG_GLOBAL": os.devnull,
            }
            settings: list[tuple[str, str]] = [("protocol.file.allow", "always")]
            credentials = self.credentials
            parts = urlsplit(reference.url)
            # Settings for this server alone, not for one it redirects to.
            origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
            if credentials.ca_certificate and parts.scheme == "https":
                authorities = _private_file(directory / "ca.crt", credentials.ca_certificate)
                settings.append((f"http.{origin}/.sslCAInfo", str(authorities)))
            if credentials.http and parts.scheme in ("http", "https"):
                username = _one_line(credentials.username or "git", "username")
                password = _one_line(credentials.password, "password")
                answer = _private_file(
                    directory / "credentials", f"username={username}\npassword={password}\n"
                )
                # A credential helper: asked only when the server asks for credentials.
                settings.append(
                    (
                        f"credential.{origin}.helper",
                        f'!f() {{ test "$1" = get && cat {shlex.quote(str(answer))}; }}; f',
                    )
                )
            ssh = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
            ssh += ["-o", f"ConnectTimeout={max(1, int(self.timeout))}"]
            if credentials.ssh_private_key:
                key = credentials.ssh_private_key.replace("\r\n", "\n").strip() + "\n"
                identity = _private_file(directory / "identity", key)
                ssh += ["-i", str(identity), "-o", "IdentitiesOnly=yes"]
            if credentials.known_hosts:
                hosts = _private_file(directory / "known_hosts", credentials.known_hosts)
                ssh += ["-o", f"UserKnownHostsFile={hosts}"]
            environment["GIT_SSH_COMMAND"] = shlex.join(ssh)
            environment["GIT_SSH_VARIANT"] = "ssh"
            environment["GIT_CONFIG_COUNT"] = str(len(settings))
            for index, (key_name, value) in enumerate(settings):
                environment[f"GIT_CONFIG_KEY_{index}"] = key_name
                environment[f"GIT_CONFIG_VALUE_{index}"] = value
            yield environment


_COMMANDS = {"ls-remote", "init", "fetch", "checkout"}
_HOST_KEY_REFUSED = ("Host key verification failed", "REMOTE HOST IDENTIFICATION HAS CHANGED")
_KEY_UNREADABLE = ("invalid format", "incorrect passphrase", "error in libcrypto")
_CERTIFICATE_REFUSED = ("SSL certificate problem", "server certificate verification failed")
_ASKED_FOR = re.compile(r"could not read (?:Username|Password) for '([^']*)'")
_HTTP_REFUSED = (
    "Authentication failed for",
    "could not read Username",
    "could not read Password",
    "The requested URL returned error: 401",
    "The requested URL returned error: 403",
)
_TRANSIENT = (
    "Could not resolve host",
    "Connection refused",
    "Connection reset",
    "timed out",
    "Network is unreachable",
    "No route to host",
    "The requested URL returned error: 429",
    "The requested URL returned error: 50",
)


def _private_file(path: Path, content: str) -> Path:
    """A file only its owner can read, from the moment it exists."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(content)
    return path


def _one_line(value: str, name: str) -> str:
    """A secret value without the line break a Secret made from a file often ends with; a
    break inside would end git's credential answer early."""
    value = value.strip("\r\n")
    if "\n" in value or "\r" in value or "\0" in value:
        raise GitAccessRefused(f"the pull secret's {name} has a line break in it")
    return value


def _without_password(text: str) -> str:
    parts = urlsplit(text)
    if parts.password is None:
        return text
    user = f"{parts.username}:***@" if parts.username else ":***@"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))
