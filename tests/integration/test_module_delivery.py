"""Modules delivered from a real OCI registry (Debian's docker-registry) and a real Git server
(`git daemon`), both on loopback: pushed with `pequod push` and published with
`cue mod publish`, resolved to digests and commits, cached, refused on a digest mismatch,
served from the cache while the registry is down, pulled with a pull secret, moved branches
picked up after the TTL, and instances pinned by digest."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pequod.delivery.fetcher import FetchSettings, ModuleFetcher
from pequod.delivery.oci import FetchError
from pequod.toolchain.locate import find_binary
from tests.delivery_harness import (
    GitServer,
    Registry,
    Repository,
    graph_nodes,
    instance,
    module_fetched,
)
from tests.operator_harness import (
    REPOSITORY,
    Kubectl,
    OperatorProcess,
    condition,
    ready_transform,
    transform,
    wait_for,
)

pytestmark = [pytest.mark.cluster, pytest.mark.workloads]

WEBSERVICE = REPOSITORY / "embedded_modules" / "webservice"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    server = Registry(tmp_path_factory.mktemp("registry")).start()
    try:
        yield server
    finally:
        server.stop()


def push(directory: Path, target: str, **environment: str) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "pequod", "push", str(directory), target],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **environment},
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip()


def test_pushed_and_cue_published_modules_serve_kinds(
    registry: Registry,
    workload_control_plane: object,
    kubectl: Kubectl,
    operator: OperatorProcess,
    namespace: str,
    tmp_path: Path,
) -> None:
    digest = push(WEBSERVICE / "v1.0.0", f"oci://{registry.host}+insecure/modules/web:stable")
    assert digest.startswith("sha256:")
    kubectl.apply(
        transform(
            "oci-web",
            f"{{type: oci, ref: '{registry.host}/modules/web:stable', insecure: true}}",
            "  kind: OciWeb\n  shortNames: [ociweb]\n",
        )
    )
    served = ready_transform(kubectl, "oci-web")
    assert served["status"]["resolvedCueRef"]["ref"] == (
        f"oci://{registry.host}/modules/web@{digest}"
    )
    kubectl.apply(instance("OciWeb", "a", namespace, "  image: ghcr.io/acme/a:1\n  replicas: 2\n"))
    assert graph_nodes(kubectl, "ociweb-a", namespace) == ["deployment", "service"]

    # CUE's own module artifact, published by `cue mod publish`.
    module = tmp_path / "cue-module"
    shutil.copytree(WEBSERVICE / "v1.1.0", module)
    (module / "cue.mod").mkdir()
    (module / "cue.mod" / "module.cue").write_text(
        'module: "pequod.example/web@v1"\nlanguage: version: "v0.17.0"\nsource: kind: "self"\n'
    )
    subprocess.run(
        [str(find_binary("cue")), "mod", "publish", "v1.1.0"],
        cwd=module,
        env={**os.environ, "CUE_REGISTRY": f"{registry.host}+insecure"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    kubectl.apply(
        transform(
            "cue-web",
            f"{{type: oci, ref: '{registry.host}+insecure/pequod.example/web:v1.1.0'}}",
            "  kind: CueWeb\n  shortNames: [cueweb]\n",
        )
    )
    served = ready_transform(kubectl, "cue-web")
    assert served["status"]["resolvedCueRef"]["ref"].startswith(
        f"oci://{registry.host}/pequod.example/web@sha256:"
    )
    kubectl.apply(instance("CueWeb", "b", namespace, "  image: ghcr.io/acme/b:1\n  replicas: 2\n"))
    assert graph_nodes(kubectl, "cueweb-b", namespace) == ["deployment", "service", "pdb"]

    # A digest in the reference must be what the tag serves.
    newer = push(WEBSERVICE / "v1.1.0", f"oci://{registry.host}+insecure/modules/web:next")
    kubectl.apply(
        transform(
            "oci-mismatch",
            f"{{type: oci, ref: '{registry.host}+insecure/modules/web:stable@{newer}'}}",
            "  kind: OciMismatch\n  shortNames: [ocimismatch]\n",
        )
    )
    refused = module_fetched(kubectl, "oci-mismatch", "False")
    message = condition(refused, "ModuleFetched")["message"]  # type: ignore[index]
    assert "refusing the module" in message
    assert kubectl.get("crd", "ocimismatches.platform.pequod.io") is None

    # Pinned instances: the Transform moves on, the pinned instance keeps its digest.
    kubectl.apply(
        transform(
            "oci-web",
            f"{{type: oci, ref: '{registry.host}/modules/web:next', insecure: true}}",
            "  kind: OciWeb\n  shortNames: [ociweb]\n  instancePlatformRefs:\n"
            f"  - {{type: oci, ref: '{registry.host}/modules/web@{digest}', insecure: true}}\n",
        )
    )
    kubectl.apply(
        instance(
            "OciWeb",
            "pinned",
            namespace,
            "  image: ghcr.io/acme/a:1\n  replicas: 2\n"
            f"  platformRef: {{type: oci, ref: '{registry.host}/modules/web@{digest}'}}\n",
        )
    )
    wait_for(lambda: "pdb" in graph_nodes(kubectl, "ociweb-a", namespace), what="a moved to 1.1.0")
    assert graph_nodes(kubectl, "ociweb-pinned", namespace) == ["deployment", "service"]
    pinned = kubectl.get("ociweb", "pinned", "-n", namespace)
    assert pinned["status"]["platformRefResolved"]["ref"] == f"{registry.host}/modules/web@{digest}"
    kubectl.apply(
        instance(
            "OciWeb",
            "unlisted",
            namespace,
            "  image: ghcr.io/acme/a:1\n"
            f"  platformRef: {{type: oci, ref: '{registry.host}/modules/web@{newer}'}}\n",
        )
    )

    def refused_pin() -> Any:
        found = kubectl.get("ociweb", "unlisted", "-n", namespace)
        validated = condition(found, "Validated")
        return validated if validated and validated["status"] == "False" else None

    assert wait_for(refused_pin, what="pin refused")["reason"] == "PlatformRefNotAllowed"
    assert kubectl.get("resourcegraph", "ociweb-unlisted", "-n", namespace) is None

    # The registry goes away: the cached module keeps serving, the Transform says why.
    registry.stop()
    try:
        kubectl.run("annotate", "transform", "oci-web", "test/poke=1", "--overwrite")
        failed = module_fetched(kubectl, "oci-web", "False")
        assert "unreachable" in condition(failed, "ModuleFetched")["message"]  # type: ignore[index]
        kubectl.apply(instance("OciWeb", "during", namespace, "  image: ghcr.io/acme/c:1\n"))
        assert "deployment" in graph_nodes(kubectl, "ociweb-during", namespace)
    finally:
        registry.start()
    module_fetched(kubectl, "oci-web", "True")
    for name in ("oci-web", "cue-web", "oci-mismatch"):
        kubectl.run("delete", "transform", name, "--wait=false")


def test_private_registry_with_a_pull_secret(
    workload_control_plane: object,
    kubectl: Kubectl,
    operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    private = Registry(tmp_path / "private", users={"pequod": "s3cret-pass"}).start()
    try:
        digest = push(
            WEBSERVICE / "v1.1.0",
            f"oci://{private.host}+insecure/team/web:1.1.0",
            PEQUOD_REGISTRY_USERNAME="pequod",
            PEQUOD_REGISTRY_PASSWORD="s3cret-pass",
        )
        reference = f"{{type: oci, ref: '{private.host}+insecure/team/web:1.1.0'"
        kubectl.apply(
            transform(
                "private-none",
                reference + "}",
                "  kind: PrivateNone\n  shortNames: [privatenone]\n",
            )
        )
        refused = module_fetched(kubectl, "private-none", "False")
        assert "check the pull secret" in condition(refused, "ModuleFetched")["message"]  # type: ignore[index]

        auth = base64.b64encode(b"pequod:s3cret-pass").decode()
        config = json.dumps({"auths": {private.host: {"auth": auth}}})
        kubectl.run("create", "namespace", "pequod-system", check=False)
        kubectl.run(
            "create",
            "secret",
            "generic",
            "registry-credentials",
            "-n",
            "pequod-system",
            "--type=kubernetes.io/dockerconfigjson",
            f"--from-literal=.dockerconfigjson={config}",
        )
        kubectl.apply(
            transform(
                "private-web",
                reference + ", pullSecretRef: {name: registry-credentials}}",
                "  kind: PrivateWeb\n  shortNames: [privateweb]\n",
            )
        )
        served = ready_transform(kubectl, "private-web")
        assert served["status"]["resolvedCueRef"]["ref"].endswith(digest)
    finally:
        for name in ("private-none", "private-web"):
            kubectl.run("delete", "transform", name, "--wait=false", check=False)
        kubectl.run("delete", "secret", "registry-credentials", "-n", "pequod-system", check=False)
        private.stop()


async def test_a_tag_resolved_with_credentials_is_not_served_without_them(
    tmp_path: Path,
) -> None:
    private = Registry(tmp_path / "private", users={"pequod": "s3cret-pass"}).start()
    try:
        digest = push(
            WEBSERVICE / "v1.1.0",
            f"oci://{private.host}+insecure/team/web:1.1.0",
            PEQUOD_REGISTRY_USERNAME="pequod",
            PEQUOD_REGISTRY_PASSWORD="s3cret-pass",
        )
        modules = ModuleFetcher(tmp_path / "cache", FetchSettings(timeout=20))
        reference = f"{private.host}/team/web:1.1.0"
        fetched = await modules.oci(reference, insecure=True, credentials=("pequod", "s3cret-pass"))
        assert fetched.digest == digest
        # Within the resolution's TTL, with the artifact in the cache: the registry is asked.
        for credentials in (None, ("pequod", "wrong-pass")):
            with pytest.raises(FetchError, match="check the pull secret"):
                await modules.oci(reference, insecure=True, credentials=credentials)
    finally:
        private.stop()


def test_git_branches_tags_and_commits(
    workload_control_plane: object,
    kubectl: Kubectl,
    operator: OperatorProcess,
    tmp_path: Path,
) -> None:
    server = GitServer(tmp_path / "git").start()
    try:
        repository = Repository(server, "platform", tmp_path / "work")
        files = {
            f"webservice/{p.name}": p.read_text() for p in (WEBSERVICE / "v1.0.0").glob("*.cue")
        }
        tagged = repository.commit(files, "webservice 1.0.0", tag="v1.0.0")
        newer = {
            f"webservice/{p.name}": p.read_text() for p in (WEBSERVICE / "v1.1.0").glob("*.cue")
        }
        head = repository.commit(newer, "webservice 1.1.0")

        for name, ref, kind, commit in (
            ("git-branch", "main", "GitBranch", head),
            ("git-tag", "v1.0.0", "GitTag", tagged),
            ("git-commit", tagged, "GitCommit", tagged),
        ):
            kubectl.apply(
                transform(
                    name,
                    f"{{type: git, ref: '{repository.url}?ref={ref}&path=webservice'}}",
                    f"  kind: {kind}\n  shortNames: [{kind.lower()}]\n",
                )
            )
            served = ready_transform(kubectl, name)
            assert served["status"]["resolvedCueRef"]["ref"] == (
                f"{repository.url}@{commit}#webservice"
            ), name

        # A new commit on the branch is picked up once the resolution's TTL has passed.
        moved = repository.commit(
            {"webservice/notes.cue": "package webservice\n\n// Release notes live here.\n"},
            "notes",
        )
        wait_for(
            lambda: (
                kubectl.get("transform", "git-branch")["status"]["resolvedCueRef"]["ref"]
                == f"{repository.url}@{moved}#webservice"
            ),
            within=60,
            what="branch moved",
        )

        kubectl.apply(
            transform(
                "git-unknown",
                f"{{type: git, ref: '{repository.url}?ref=no-such-branch'}}",
                "  kind: GitUnknown\n  shortNames: [gitunknown]\n",
            )
        )
        refused = module_fetched(kubectl, "git-unknown", "False")
        assert "no branch or tag 'no-such-branch'" in condition(refused, "ModuleFetched")["message"]  # type: ignore[index]
    finally:
        for name in ("git-branch", "git-tag", "git-commit", "git-unknown"):
            kubectl.run("delete", "transform", name, "--wait=false", check=False)
        server.stop()
