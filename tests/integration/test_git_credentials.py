"""Modules from Git servers that want credentials, both real and on loopback: git's
http-backend behind HTTP basic auth (a username and a token, over HTTP and over HTTPS with a
CA of the test's own) and sshd with an authorized key
and its own host key. Through the fetcher (right credentials fetch; wrong or missing ones
fail once, in words that name the remedy and never the token; the token is on no command
line; no temporary file outlives git; host keys are checked) and through the operator (a
Transform with a pullSecretRef serves its kind; one with a wrong Secret says why)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import pwd
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pequod.controlplane.pki import CertificateAuthority
from pequod.delivery.fetcher import FetchSettings, ModuleFetcher
from pequod.delivery.git import GitClient, GitCredentials, GitReference
from pequod.delivery.oci import FetchError
from pequod.module.source import ModuleError
from tests.delivery_harness import Repository, binary, git, graph_nodes, instance, module_fetched
from tests.git_servers import HttpGitServer, SshGitServer, SshKey, ssh_key
from tests.operator_harness import (
    REPOSITORY,
    Kubectl,
    OperatorProcess,
    condition,
    ready_transform,
    transform,
)

WEBSERVICE = REPOSITORY / "embedded_modules" / "webservice" / "v1.0.0"
MODULE = {f"webservice/{p.name}": p.read_text() for p in WEBSERVICE.glob("*.cue")}
USER = "pequod"
TOKEN = "glpat-7rV2kQ9xZ4mN8bT1wY6c"
WRONG_TOKEN = "glpat-Wr0ngWr0ngWr0ngWr0ng"


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpGitServer]:
    server = HttpGitServer(tmp_path_factory.mktemp("http-git"), {USER: TOKEN}).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def http_repository(
    http_server: HttpGitServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Repository, str]:
    repository = Repository(http_server, "platform", tmp_path_factory.mktemp("http-work"))
    return repository, repository.commit(MODULE, "webservice 1.0.0", tag="v1.0.0")


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def https_repository(
    authority: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Repository, str]]:
    server = HttpGitServer(
        tmp_path_factory.mktemp("https-git"),
        {USER: TOKEN},
        certificate=authority.issue_serving("git", ["127.0.0.1"]),
    ).start()
    try:
        repository = Repository(server, "platform", tmp_path_factory.mktemp("https-work"))
        yield repository, repository.commit(MODULE, "webservice 1.0.0")
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client_key() -> SshKey:
    return ssh_key()


@pytest.fixture(scope="module")
def ssh_server(
    tmp_path_factory: pytest.TempPathFactory, client_key: SshKey
) -> Iterator[SshGitServer]:
    server = SshGitServer(tmp_path_factory.mktemp("ssh-git")).start()
    server.authorize(client_key.public)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def ssh_repository(
    ssh_server: SshGitServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Repository, str]:
    repository = Repository(ssh_server, "platform", tmp_path_factory.mktemp("ssh-work"))
    return repository, repository.commit(MODULE, "webservice 1.0.0")


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory git's credential files go to, to see what is left in it."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


def fetcher(tmp_path: Path) -> ModuleFetcher:
    return ModuleFetcher(tmp_path / "cache", FetchSettings(timeout=20, attempts=3))


def processes_showing(text: str) -> list[str]:
    """The /proc files of processes whose command line or environment has ``text`` in it."""
    found = []
    for process in Path("/proc").iterdir():
        for name in ("cmdline", "environ") if process.name.isdigit() else ():
            try:
                content = (process / name).read_bytes()
            except OSError:  # gone meanwhile, or not ours to read
                continue
            if text.encode() in content:
                found.append(f"{process}/{name}")
    return found


def learnt_hosts() -> str:
    """ssh's own known_hosts (in the home of the passwd entry, whatever $HOME says)."""
    learnt = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".ssh" / "known_hosts"
    return learnt.read_text() if learnt.exists() else ""


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("pequod-git-"))


# -- HTTP with a token, through the fetcher ---------------------------------------------------


async def test_a_token_fetches_the_module_and_leaves_no_file_behind(
    http_server: HttpGitServer,
    http_repository: tuple[Repository, str],
    private_tmp: Path,
    tmp_path: Path,
) -> None:
    repository, commit = http_repository
    fetched = await fetcher(tmp_path).git(
        f"{repository.url}?ref=v1.0.0&path=webservice",
        # As a Secret made from a file has it: with a line break at the end.
        credentials=GitCredentials(username=USER, password=TOKEN + "\n"),
    )
    assert fetched.digest == commit
    assert fetched.module.reference == f"{repository.url}@{commit}#webservice"
    assert sorted(p.name for p in fetched.module.directory.iterdir()) == sorted(
        p.name for p in WEBSERVICE.glob("*.cue")
    )
    assert leftovers(private_tmp) == []


async def test_https_with_the_ca_of_the_pull_secret(
    https_repository: tuple[Repository, str], authority: CertificateAuthority, tmp_path: Path
) -> None:
    repository, commit = https_repository
    reference = f"{repository.url}?ref=main&path=webservice"
    ca = authority.pair.certificate.read_text()
    fetched = await fetcher(tmp_path).git(
        reference, credentials=GitCredentials(USER, TOKEN, ca_certificate=ca)
    )
    assert fetched.digest == commit
    with pytest.raises(FetchError) as refused:
        await fetcher(tmp_path).git(reference, credentials=GitCredentials(USER, TOKEN))
    assert str(refused.value) == (
        f"{repository.url}: the server's certificate is not signed by a CA the operator "
        "trusts: put the CA's certificate in the pull secret's ca.crt"
    )
    other = CertificateAuthority(tmp_path / "other").pair.certificate.read_text()
    with pytest.raises(FetchError, match=r"not signed by the pull secret's ca\.crt"):
        await fetcher(tmp_path).git(
            reference, credentials=GitCredentials(USER, TOKEN, ca_certificate=other)
        )


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        (
            None,
            "the server asks for credentials: name a Secret with username and password "
            "(or token) in pullSecretRef",
        ),
        (
            GitCredentials(username=USER, password=TOKEN[:-1] + "X"),
            "the server refused the pull secret's username and password (or token)",
        ),
    ],
    ids=["none", "wrong-token"],
)
async def test_refused_credentials_fail_once_and_say_why(
    http_server: HttpGitServer,
    http_repository: tuple[Repository, str],
    private_tmp: Path,
    tmp_path: Path,
    credentials: GitCredentials | None,
    expected: str,
) -> None:
    repository, _ = http_repository
    before = http_server.count()
    with pytest.raises(FetchError) as refused:
        await fetcher(tmp_path).git(f"{repository.url}?ref=main", credentials=credentials)
    assert str(refused.value) == f"{repository.url}: {expected}"
    assert not refused.value.transient
    assert TOKEN[:-1] not in str(refused.value)
    # One attempt of `git ls-remote` (asked without, then with credentials), not three:
    # asking again with the same credentials cannot help.
    assert http_server.count() - before <= 2
    assert leftovers(private_tmp) == []


async def test_a_resolution_is_not_shared_with_other_credentials(
    http_repository: tuple[Repository, str], tmp_path: Path
) -> None:
    repository, commit = http_repository
    modules = fetcher(tmp_path)
    reference = f"{repository.url}?ref=main&path=webservice"
    good = await modules.git(reference, credentials=GitCredentials(USER, TOKEN))
    assert good.digest == commit
    # Within the resolution's TTL, and with the commit in the cache: still asked for.
    with pytest.raises(FetchError, match="refused the pull secret's username"):
        await modules.git(reference, credentials=GitCredentials(USER, "not-the-token"))
    with pytest.raises(FetchError, match="asks for credentials"):
        await modules.git(reference)


async def test_credentials_do_not_follow_a_redirect_to_another_server(
    http_server: HttpGitServer,
    http_repository: tuple[Repository, str],  # what the redirect points at
    tmp_path: Path,
) -> None:
    elsewhere = f"http://127.0.0.1:{http_server.port}"
    redirecting = HttpGitServer(tmp_path / "redirecting", {USER: TOKEN}, redirect=elsewhere).start()
    try:
        before = len(http_server.requests)
        with pytest.raises(FetchError) as refused:
            await fetcher(tmp_path).git(
                f"{redirecting.url('platform')}?ref=main",
                credentials=GitCredentials(USER, TOKEN),
            )
        assert str(refused.value) == (
            f"{redirecting.url('platform')}: the server sent git to {elsewhere}, which asks for "
            "credentials; the pull secret's are given to the reference's server alone"
        )
        assert redirecting.count(status=302) >= 1
        followed = http_server.requests[before:]
        assert followed, "git did not follow the redirect"
        assert [r.authorization for r in followed] == [None] * len(followed)
    finally:
        redirecting.stop()


async def test_one_commit_in_two_repositories_is_named_by_each(
    http_server: HttpGitServer, http_repository: tuple[Repository, str], tmp_path: Path
) -> None:
    repository, commit = http_repository
    mirror = http_server.directory / "mirror.git"
    if not mirror.exists():
        git("init", "--quiet", "--bare", str(mirror))
        git("-C", str(repository.work), "push", "--quiet", str(mirror), "main")
    modules = fetcher(tmp_path)
    credentials = GitCredentials(USER, TOKEN)
    for url in (repository.url, http_server.url("mirror")):
        fetched = await modules.git(f"{url}?ref=main&path=webservice", credentials=credentials)
        assert fetched.module.reference == f"{url}@{commit}#webservice"


async def test_the_token_is_on_no_command_line_and_in_no_environment(
    http_server: HttpGitServer,
    http_repository: tuple[Repository, str],
    private_tmp: Path,
    tmp_path: Path,
) -> None:
    repository, commit = http_repository
    http_server.hold()
    fetching = asyncio.create_task(
        fetcher(tmp_path).git(
            f"{repository.url}?ref=main&path=webservice",
            credentials=GitCredentials(USER, TOKEN),
        )
    )
    try:
        held = await asyncio.to_thread(http_server.held.wait, 60)
        assert held, "git never reached the server"
        # git is waiting for the server's answer: every process on the machine, now.
        basic = base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()  # as in a header
        assert processes_showing(TOKEN) + processes_showing(basic) == []
        (private,) = (private_tmp / name for name in leftovers(private_tmp))
        assert private.stat().st_mode & 0o777 == 0o700
        assert (private / "credentials").stat().st_mode & 0o777 == 0o600
    finally:
        http_server.release()
    assert (await fetching).digest == commit
    assert leftovers(private_tmp) == []


def test_a_server_that_does_not_answer_takes_git_and_its_helpers_down_with_it(
    http_server: HttpGitServer, http_repository: tuple[Repository, str]
) -> None:
    repository, _ = http_repository
    http_server.hold()
    try:
        started = time.monotonic()
        with pytest.raises(FetchError) as timed_out:
            GitClient(GitCredentials(USER, TOKEN), timeout=2).resolve(
                GitReference.parse(f"{repository.url}?ref=main")
            )
        assert time.monotonic() - started < 30  # not until the server lets go (60 s)
        assert str(timed_out.value) == f"git ls-remote {repository.url}: no answer in 2 s"
        assert timed_out.value.transient
        # git-remote-http (which has the URL on its command line) went with git.
        assert processes_showing(repository.url) == []
    finally:
        http_server.release()


def test_a_token_in_the_url_is_refused_without_showing_it() -> None:
    with pytest.raises(ModuleError) as refused:
        GitReference.parse(f"https://{USER}:{TOKEN}@git.example/platform.git?ref=main")
    assert TOKEN not in str(refused.value)
    assert "put it in the Secret named by pullSecretRef" in str(refused.value)
    assert f"https://{USER}:***@git.example/platform.git" in str(refused.value)


async def test_git_asks_no_program_of_the_callers_for_a_password(
    http_repository: tuple[Repository, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An operator has no one to answer a prompt: a caller's askpass program, or a terminal,
    # would hang it or answer for it.
    asked = tmp_path / "asked"
    askpass = tmp_path / "askpass"
    askpass.write_text(f"#!/bin/sh\ntouch {asked}\necho {TOKEN}\n")
    askpass.chmod(0o755)
    for name in ("GIT_ASKPASS", "SSH_ASKPASS"):
        monkeypatch.setenv(name, str(askpass))
    monkeypatch.setenv("SSH_ASKPASS_REQUIRE", "force")
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "1")
    repository, _ = http_repository
    with pytest.raises(FetchError, match="asks for credentials"):
        await fetcher(tmp_path).git(f"{repository.url}?ref=main")
    assert not asked.exists()


# -- SSH with a key, through the fetcher ------------------------------------------------------


async def test_a_key_and_known_hosts_fetch_the_module(
    ssh_server: SshGitServer,
    ssh_repository: tuple[Repository, str],
    client_key: SshKey,
    private_tmp: Path,
    tmp_path: Path,
) -> None:
    repository, commit = ssh_repository
    # known_hosts as the guide says to make it (the test knows the key it is to show).
    scanned = await asyncio.to_thread(
        subprocess.run,
        [binary("ssh-keyscan", "PEQUOD_SSH_KEYSCAN"), "-p", str(ssh_server.port), "127.0.0.1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert scanned.stdout.strip() == ssh_server.known_hosts.strip()
    fetched = await fetcher(tmp_path).git(
        f"{repository.url}?ref=main&path=webservice",
        credentials=GitCredentials(ssh_private_key=client_key.private, known_hosts=scanned.stdout),
    )
    assert fetched.module.reference == f"{repository.url}@{commit}#webservice"
    assert leftovers(private_tmp) == []


async def test_ssh_refusals_say_why(
    ssh_server: SshGitServer,
    ssh_repository: tuple[Repository, str],
    client_key: SshKey,
    tmp_path: Path,
) -> None:
    repository, _ = ssh_repository
    reference = f"{repository.url}?ref=main"
    unknown_host = (
        f"{repository.url}: the SSH host key of 127.0.0.1 is not known or has changed: put the "
        "server's key in the pull secret's known_hosts (what "
        f"`ssh-keyscan -p {ssh_server.port} 127.0.0.1` prints, once checked)"
    )
    impostor = f"[127.0.0.1]:{ssh_server.port} {ssh_key().public}\n"
    before = learnt_hosts()
    for credentials, expected in (
        # No known_hosts: the host key is not taken on trust.
        (GitCredentials(ssh_private_key=client_key.private), unknown_host),
        (GitCredentials(ssh_private_key=client_key.private, known_hosts=impostor), unknown_host),
        (
            GitCredentials(ssh_private_key=ssh_key().private, known_hosts=ssh_server.known_hosts),
            f"{repository.url}: the SSH server refused the pull secret's ssh-privatekey",
        ),
        (
            GitCredentials(ssh_private_key="not a key", known_hosts=ssh_server.known_hosts),
            "the pull secret's ssh-privatekey is not a private key OpenSSH can read without a "
            "passphrase",
        ),
        (
            GitCredentials(known_hosts=ssh_server.known_hosts),
            f"{repository.url}: the SSH server asks for a key: name a Secret with "
            "ssh-privatekey (and known_hosts) in pullSecretRef",
        ),
    ):
        with pytest.raises(FetchError) as refused:
            await fetcher(tmp_path).git(reference, credentials=credentials)
        assert str(refused.value) == expected
        assert not refused.value.transient
    # Nor was the server's key learnt on the way.
    assert learnt_hosts() == before


# -- through the operator ---------------------------------------------------------------------


def secret(kubectl: Kubectl, name: str, *literals: str, type_: str = "Opaque") -> None:
    kubectl.run("create", "namespace", "pequod-system", check=False)
    kubectl.run("delete", "secret", name, "-n", "pequod-system", "--ignore-not-found")
    kubectl.run(
        "create", "secret", "generic", name, "-n", "pequod-system", f"--type={type_}", *literals
    )


@pytest.mark.cluster
@pytest.mark.workloads
def test_transforms_with_git_credentials(
    http_server: HttpGitServer,
    http_repository: tuple[Repository, str],
    https_repository: tuple[Repository, str],
    authority: CertificateAuthority,
    ssh_server: SshGitServer,
    ssh_repository: tuple[Repository, str],
    client_key: SshKey,
    workload_control_plane: object,
    kubectl: Kubectl,
    operator: OperatorProcess,
    namespace: str,
    tmp_path: Path,
) -> None:
    http, _ = http_repository
    https, https_commit = https_repository
    ssh, ssh_commit = ssh_repository
    (tmp_path / "key").write_text(client_key.private)
    (tmp_path / "known_hosts").write_text(ssh_server.known_hosts)
    secret(
        kubectl,
        "git-token",
        f"--from-literal=username={USER}",
        f"--from-literal=token={TOKEN}",
        f"--from-file=ca.crt={authority.pair.certificate}",
    )
    secret(
        kubectl,
        "git-wrong-token",
        f"--from-literal=username={USER}",
        f"--from-literal=token={WRONG_TOKEN}",
    )
    secret(
        kubectl,
        "git-ssh",
        f"--from-file=ssh-privatekey={tmp_path / 'key'}",
        f"--from-file=known_hosts={tmp_path / 'known_hosts'}",
        type_="kubernetes.io/ssh-auth",
    )
    secret(
        kubectl,
        "git-ssh-no-hosts",
        f"--from-file=ssh-privatekey={tmp_path / 'key'}",
        type_="kubernetes.io/ssh-auth",
    )
    names = ("git-https", "git-ssh", "git-refused", "git-unknown-host")
    try:
        for name, url, pull_secret, kind in (
            ("git-https", https.url, "git-token", "GitHttps"),
            ("git-ssh", ssh.url, "git-ssh", "GitSsh"),
        ):
            kubectl.apply(
                transform(
                    name,
                    f"{{type: git, ref: '{url}?ref=main&path=webservice', "
                    f"pullSecretRef: {{name: {pull_secret}}}}}",
                    f"  kind: {kind}\n  shortNames: [{kind.lower()}]\n",
                )
            )
        served = ready_transform(kubectl, "git-https")
        assert served["status"]["resolvedCueRef"]["ref"] == f"{https.url}@{https_commit}#webservice"
        served = ready_transform(kubectl, "git-ssh")
        assert served["status"]["resolvedCueRef"]["ref"] == f"{ssh.url}@{ssh_commit}#webservice"
        for kind, name in (("GitHttps", "over-https"), ("GitSsh", "over-ssh")):
            kubectl.apply(instance(kind, name, namespace, "  image: ghcr.io/acme/a:1\n"))
            assert graph_nodes(kubectl, f"{kind.lower()}-{name}", namespace) == [
                "deployment",
                "service",
            ]

        for name, url, pull_secret, expected in (
            (
                "git-refused",
                http.url,
                "git-wrong-token",
                f"{http.url}: the server refused the pull secret's username and password "
                "(or token)",
            ),
            (
                "git-unknown-host",
                ssh.url,
                "git-ssh-no-hosts",
                f"{ssh.url}: the SSH host key of 127.0.0.1 is not known or has changed",
            ),
        ):
            kubectl.apply(
                transform(
                    name,
                    f"{{type: git, ref: '{url}?ref=main&path=webservice', "
                    f"pullSecretRef: {{name: {pull_secret}}}}}",
                    f"  kind: {name.title().replace('-', '')}\n",
                )
            )
            refused = module_fetched(kubectl, name, "False")
            fetched = condition(refused, "ModuleFetched")
            assert fetched is not None
            assert fetched["reason"] == "FetchFailed"
            assert fetched["message"].startswith(expected), fetched["message"]

        # Refused credentials are not asked again and again: the next try is due in 30 s,
        # and a storm would show within these seconds.
        refusals = http_server.count(status=401)
        time.sleep(5)
        assert http_server.count(status=401) - refusals <= 2
        everything = json.dumps([kubectl.get("transform", name) for name in names])
        for token in (TOKEN, WRONG_TOKEN):
            assert token not in everything
            assert token not in operator.log()
        assert client_key.private.splitlines()[1] not in operator.log()
    finally:
        for name in names:
            kubectl.run("delete", "transform", name, "--wait=false", check=False)
        for name in ("git-token", "git-wrong-token", "git-ssh", "git-ssh-no-hosts"):
            kubectl.run("delete", "secret", name, "-n", "pequod-system", check=False)
