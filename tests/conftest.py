"""Fixtures shared by all tests: a real local control plane and clients bound to it.

The control plane is started once per test session from the pinned toolchain. Starting it is
never skipped: a missing binary or a component that does not start fails the tests that need it,
with the tail of every component's log.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import kubernetes
import pytest
from kubernetes_asyncio import client as async_client
from kubernetes_asyncio import config as async_config

from pequod.controlplane import ControlPlane, ControlPlaneError
from pequod.sandbox.kubectl import wait_established
from pequod.toolchain.locate import ToolNotFoundError
from tests.operator_harness import REPOSITORY, Kubectl, OperatorProcess


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """etcd + kube-apiserver, shared by the whole session."""
    plane = ControlPlane()
    try:
        plane.start()
    except (ToolNotFoundError, ControlPlaneError) as error:
        pytest.fail(f"the local control plane did not start: {error}", pytrace=False)
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def workload_control_plane(control_plane: ControlPlane) -> ControlPlane:
    """The session's control plane with kube-controller-manager, kube-scheduler and kwok added."""
    try:
        control_plane.start_workloads()
    except (ToolNotFoundError, ControlPlaneError) as error:
        pytest.fail(f"the workload components did not start: {error}", pytrace=False)
    return control_plane


@pytest.fixture(scope="session")
def sync_api_client(control_plane: ControlPlane) -> kubernetes.client.ApiClient:
    api: kubernetes.client.ApiClient = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(control_plane.kubeconfig)
    )
    return api


@pytest.fixture
def namespace(sync_api_client: kubernetes.client.ApiClient) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    core = kubernetes.client.CoreV1Api(sync_api_client)
    core.create_namespace(
        kubernetes.client.V1Namespace(
            metadata=kubernetes.client.V1ObjectMeta(name=name, labels={"pequod.io/test": "true"})
        )
    )
    try:
        yield name
    finally:
        core.delete_namespace(name)


@pytest.fixture
async def api_client(control_plane: ControlPlane) -> AsyncIterator[async_client.ApiClient]:
    """An async client (kubernetes-asyncio) bound to the control plane's admin kubeconfig."""
    configuration = async_client.Configuration()
    await async_config.load_kube_config(
        config_file=str(control_plane.kubeconfig), client_configuration=configuration
    )
    async with async_client.ApiClient(configuration) as api:
        yield api


@pytest.fixture(scope="session")
def kubectl(control_plane: ControlPlane) -> Kubectl:
    return Kubectl(control_plane)


@pytest.fixture(scope="session")
def pequod_crds(kubectl: Kubectl) -> None:
    """Pequod's own CRDs from manifests/crds, Established."""
    kubectl.run("apply", "-f", str(REPOSITORY / "manifests" / "crds"))
    wait_established(
        kubectl.plane.kubeconfig,
        "transforms.platform.pequod.io",
        "resourcegraphs.platform.pequod.io",
    )


@pytest.fixture(scope="session")
def operator(
    control_plane: ControlPlane, pequod_crds: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator (`pequod run`) as a separate process for the whole session."""
    process = OperatorProcess(control_plane, tmp_path_factory.mktemp("operator") / "operator.log")
    try:
        process.start()
    except AssertionError:
        pytest.fail(f"the operator did not start:\n{process.log()[-5000:]}", pytrace=False)
    try:
        yield process
    finally:
        process.stop()
