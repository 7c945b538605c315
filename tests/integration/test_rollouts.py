"""Revisions, rollouts in waves and rollback, against a real control plane and the operator
as a process: a module edit reaches 20 instances in waves (canary 2, then 6 at a time), a
version that never becomes Ready fails the rollout after the canary (Pause keeps the others
where they were, Rollback puts the canaries back from their revisions, undo restores the
Transform's module), `pequod rollback` puts one instance's objects back exactly, revisions
are bounded and go with their instance."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from pequod.api.revisions import CONTROLLER_REVISIONS, revisions_selector
from pequod.clock import parse_timestamp
from pequod.controlplane import ControlPlane
from tests.operator_harness import (
    Kubectl,
    OperatorProcess,
    condition,
    inline_transform,
    ready_transform,
    wait_for,
)

pytestmark = pytest.mark.cluster

INSTANCES = 20

MODULE = """\
package roll

#Input: {
	greeting: string | *"hello"
}
#Render: {
	input: {metadata: {name: string, namespace: string, labels?: _, annotations?: _}, spec: #Input}
	output: nodes: [{
		id: "config"
		object: {
			apiVersion: "v1", kind: "ConfigMap", metadata: name: "\\(input.metadata.name)-config"
			data: {greeting: input.spec.greeting, version: "VERSION"}
		}
		READINESS
	}]
}
"""

NEVER_READY = 'readyWhen: [{type: "ConditionMatch", conditionType: "Never", status: "True"}]'


def module(version: str, *, ready: bool = True) -> str:
    return MODULE.replace("VERSION", version).replace("READINESS", "" if ready else NEVER_READY)


def rollout_spec(on_failure: str, deadline: int) -> str:
    return (
        "  rollout:\n    strategy: Waves\n    canary: {instances: 2}\n    waveSize: 6\n"
        f"    waveDeadlineSeconds: {deadline}\n    onFailure: {on_failure}\n"
    )


def pequod(plane: ControlPlane, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pequod", *arguments, "--kubeconfig", str(plane.kubeconfig)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def instances(kubectl: Kubectl, kind: str, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.get(kind, "-n", namespace)["items"]
    return items


def ready_on(obj: dict[str, Any], digest: str) -> bool:
    status = obj.get("status") or {}
    ready = condition(obj, "Ready") or {}
    return (
        ready.get("status") == "True"
        and status.get("observedGeneration") == obj["metadata"]["generation"]
        and (status.get("platformRefResolved") or {}).get("digest") == digest
    )


def revisions_of(kubectl: Kubectl, obj: dict[str, Any]) -> list[dict[str, Any]]:
    items = kubectl.get(
        CONTROLLER_REVISIONS.plural,
        "-n",
        obj["metadata"]["namespace"],
        "-l",
        revisions_selector(obj["metadata"]["uid"]),
    )["items"]
    return sorted(items, key=lambda r: r["revision"])


def revision_number(kubectl: Kubectl, kind: str, name: str, namespace: str) -> int | None:
    status = kubectl.get(kind, name, "-n", namespace).get("status") or {}
    number: int | None = (status.get("revision") or {}).get("number")
    return number


def rollout(kubectl: Kubectl, transform: str) -> dict[str, Any]:
    found: dict[str, Any] = (kubectl.get("transform", transform).get("status") or {}).get(
        "rollout"
    ) or {}
    return found


def digest_of(kubectl: Kubectl, transform: str) -> str:
    digest: str = kubectl.get("transform", transform)["status"]["resolvedCueRef"]["digest"]
    return digest


class Fleet:
    """A Transform serving the roll module under ``kind``, with 20 instances Ready on v1."""

    def __init__(self, kubectl: Kubectl, name: str, kind: str, rollout_settings: str) -> None:
        self.kubectl = kubectl
        self.name = name
        self.kind = kind
        self.namespace = name
        self.rollout_settings = rollout_settings
        kubectl.run("create", "namespace", self.namespace)
        self.serve(module("1"))
        ready_transform(kubectl, name)
        self.first_digest = digest_of(kubectl, name)
        kubectl.apply(
            "\n---\n".join(
                f"apiVersion: platform.pequod.io/v1alpha1\nkind: {kind}\nmetadata:\n"
                f"  name: i{i:02d}\n  namespace: {self.namespace}\nspec: {{}}\n"
                for i in range(INSTANCES)
            )
        )
        self.wait_all_on(self.first_digest)

    def serve(self, source: str) -> None:
        self.kubectl.apply(
            inline_transform(self.name, source, f"  kind: {self.kind}\n{self.rollout_settings}")
        )

    def all(self) -> list[dict[str, Any]]:
        return instances(self.kubectl, self.kind, self.namespace)

    def wait_all_on(self, digest: str, within: float = 180) -> list[dict[str, Any]]:
        def done() -> list[dict[str, Any]] | None:
            found = self.all()
            on = [o for o in found if ready_on(o, digest)]
            return found if len(found) == INSTANCES and len(on) == INSTANCES else None

        result: list[dict[str, Any]] = wait_for(
            done, within=within, what=f"{INSTANCES} {self.kind} Ready on {digest[:19]}"
        )
        return result

    def wait_phase(self, phase: str, within: float = 240) -> dict[str, Any]:
        result: dict[str, Any] = wait_for(
            lambda: (found := rollout(self.kubectl, self.name)).get("phase") == phase and found,
            within=within,
            what=f"rollout of {self.name} {phase}",
        )
        return result

    def close(self) -> None:
        self.kubectl.run("delete", "namespace", self.namespace, "--wait=false")
        self.kubectl.run("delete", "transform", self.name, "--wait=false")


@pytest.fixture
def fleet(
    request: pytest.FixtureRequest, kubectl: Kubectl, operator: OperatorProcess
) -> Iterator[Fleet]:
    name, kind, on_failure, deadline = request.param
    created = Fleet(kubectl, name, kind, rollout_spec(on_failure, deadline))
    try:
        yield created
    finally:
        created.close()


@pytest.mark.parametrize("fleet", [("roll-waves", "RollWaves", "Pause", 120)], indirect=True)
def test_a_module_edit_reaches_every_instance_in_waves(
    fleet: Fleet, control_plane: ControlPlane
) -> None:
    fleet.serve(module("2"))
    final = fleet.wait_phase("Complete")
    target = final["target"]["digest"]
    assert target != fleet.first_digest
    assert final["previous"]["digest"] == fleet.first_digest
    waves = final["waves"]
    assert [len(w["instances"]) for w in waves] == [2, 6, 6, 6]
    assert waves[0]["instances"] == [f"{fleet.namespace}/i00", f"{fleet.namespace}/i01"]
    # A wave starts once the one before is Ready (timestamps in seconds).
    for before, after in itertools.pairwise(waves):
        assert parse_timestamp(after["startedAt"]) >= parse_timestamp(before["readyAt"])
    wave_of = {key.split("/")[1]: w for w in waves for key in w["instances"]}
    for obj in fleet.wait_all_on(target):
        revisions = revisions_of(fleet.kubectl, obj)
        assert [r["revision"] for r in revisions] == [1, 2], obj["metadata"]["name"]
        applied = revisions[1]["metadata"]["annotations"]["platform.pequod.io/applied-at"]
        wave = wave_of[obj["metadata"]["name"]]
        # Its revision of the new version was applied after its wave started, not before.
        assert parse_timestamp(applied) >= parse_timestamp(wave["startedAt"])
        assert revisions[1]["metadata"]["annotations"]["platform.pequod.io/module-digest"] == (
            target
        )
        assert obj["status"]["revision"]["number"] == 2
    versions = fleet.kubectl.get("transform", fleet.name)["status"]["moduleVersions"]
    assert versions[0]["digest"] == target
    assert versions[0]["instances"] == INSTANCES
    shown = pequod(control_plane, "rollout", "status", f"transform/{fleet.name}")
    assert shown.returncode == 0, shown.stderr
    assert "Complete" in shown.stdout
    history = pequod(control_plane, "history", f"{fleet.kind}/i05", "-n", fleet.namespace)
    assert history.returncode == 0, history.stderr
    lines = history.stdout.splitlines()
    assert lines[0].startswith("REVISION")
    assert [line.split()[0] for line in lines[1:]] == ["1", "2*"]


@pytest.mark.parametrize("fleet", [("roll-pause", "RollPause", "Pause", 20)], indirect=True)
def test_a_version_never_ready_pauses_after_the_canary_and_undo_restores(
    fleet: Fleet, control_plane: ControlPlane
) -> None:
    fleet.serve(module("2", ready=False))
    failed = fleet.wait_phase("Failed")
    assert [len(w["instances"]) for w in failed["waves"]] == [2]
    names = {f"{f['namespace']}/{f['name']}" for f in failed["failedInstances"]}
    assert names == {"roll-pause/i00", "roll-pause/i01"}
    status = pequod(control_plane, "rollout", "status", f"transform/{fleet.name}")
    assert status.returncode == 1
    assert "roll-pause/i00" in status.stdout
    canaries = {"i00", "i01"}
    for obj in fleet.all():
        if obj["metadata"]["name"] in canaries:
            continue
        # Never left the old version: one revision, the old digest, Ready.
        assert ready_on(obj, fleet.first_digest), obj["metadata"]["name"]
        assert len(revisions_of(fleet.kubectl, obj)) == 1
    undo = pequod(control_plane, "rollout", "undo", f"transform/{fleet.name}")
    assert undo.returncode == 0, undo.stderr
    fleet.wait_all_on(fleet.first_digest)
    assert fleet.wait_phase("Complete")["message"].startswith("undone")
    assert digest_of(fleet.kubectl, fleet.name) == fleet.first_digest


@pytest.mark.parametrize("fleet", [("roll-back", "RollBack", "Rollback", 20)], indirect=True)
def test_rollback_puts_the_canaries_back_on_their_old_revision(fleet: Fleet) -> None:
    before = {o["metadata"]["name"]: o["status"]["renderHash"] for o in fleet.all()}
    fleet.serve(module("2", ready=False))
    rolled = fleet.wait_phase("RolledBack")
    assert [len(w["instances"]) for w in rolled["waves"]] == [2]
    after = fleet.wait_all_on(fleet.first_digest)
    # The same graphs as before (the revisions, put back: no render).
    assert {o["metadata"]["name"]: o["status"]["renderHash"] for o in after} == before
    for name in ("i00", "i01"):
        events = fleet.kubectl.get(
            "events",
            "-n",
            fleet.namespace,
            "--field-selector",
            f"involvedObject.name={name},reason=RevisionRestored",
        )["items"]
        assert events, name
        config = fleet.kubectl.get("configmap", f"{name}-config", "-n", fleet.namespace)
        assert config["data"]["version"] == "1"


@pytest.mark.parametrize("fleet", [("roll-one", "RollOne", "Pause", 120)], indirect=True)
def test_pequod_rollback_puts_one_instance_back_exactly(
    fleet: Fleet, control_plane: ControlPlane
) -> None:
    kubectl, namespace = fleet.kubectl, fleet.namespace

    def config() -> dict[str, Any]:
        found: dict[str, Any] = kubectl.get("configmap", "i03-config", "-n", namespace)
        return found

    first = config()
    kubectl.run(
        "patch", fleet.kind, "i03", "-n", namespace, "--type=merge",
        "-p", '{"spec":{"greeting":"goodbye"}}',
    )  # fmt: skip
    wait_for(lambda: config()["data"]["greeting"] == "goodbye", what="the new greeting")
    wait_for(
        lambda: revision_number(kubectl, fleet.kind, "i03", namespace) == 2,
        what="revision 2 in force",
    )
    done = pequod(
        control_plane, "rollback", f"{fleet.kind}/i03", "-n", namespace, "--timeout", "60"
    )
    assert done.returncode == 0, (
        done.stdout + done.stderr + json.dumps(kubectl.get(fleet.kind, "i03", "-n", namespace))
    )
    # The progress while it waits (the instance's phase and revision), then the outcome.
    lines = done.stdout.splitlines()
    assert "rolling back to revision 1 (" in lines[0], done.stdout
    assert any(line.strip().endswith("revision 1") for line in lines[1:-1]), done.stdout
    assert lines[-1].endswith("Ready on revision 1"), done.stdout
    restored = config()
    assert restored["data"] == first["data"]
    assert restored["metadata"]["labels"] == first["metadata"]["labels"]
    history = pequod(control_plane, "history", f"{fleet.kind}/i03", "-n", namespace)
    # The revision put back keeps its number: a rollback names revisions by them.
    assert [line.split()[0] for line in history.stdout.splitlines()[1:]] == ["1*", "2"]
    # A change of the spec ends the rollback: the annotation goes, the spec renders.
    kubectl.run(
        "patch", fleet.kind, "i03", "-n", namespace, "--type=merge",
        "-p", '{"spec":{"greeting":"again"}}',
    )  # fmt: skip
    wait_for(lambda: config()["data"]["greeting"] == "again", what="the spec rendered again")
    annotations = kubectl.get(fleet.kind, "i03", "-n", namespace)["metadata"].get("annotations")
    assert "pequod.io/rollback-to" not in (annotations or {})
    refused = pequod(control_plane, "rollback", f"{fleet.kind}/i03", "-n", namespace, "--to", "9")
    assert refused.returncode == 2
    assert "there is no revision 9" in refused.stderr


@pytest.mark.parametrize("fleet", [("roll-bound", "RollBound", "Pause", 120)], indirect=True)
def test_revisions_are_bounded_and_go_with_their_instance(fleet: Fleet) -> None:
    kubectl, namespace = fleet.kubectl, fleet.namespace
    for n in range(12):
        kubectl.run(
            "patch", fleet.kind, "i07", "-n", namespace, "--type=merge",
            "-p", json.dumps({"spec": {"greeting": f"g{n}"}}),
        )  # fmt: skip
        wait_for(
            lambda n=n: revision_number(kubectl, fleet.kind, "i07", namespace) == n + 2,  # type: ignore[misc]
            what=f"revision {n + 2}",
        )
    obj = kubectl.get(fleet.kind, "i07", "-n", namespace)
    numbers = [r["revision"] for r in revisions_of(kubectl, obj)]
    assert numbers == list(range(4, 14))
    kubectl.run("delete", fleet.kind, "i07", "-n", namespace, "--timeout=60s")
    assert revisions_of(kubectl, obj) == []


@pytest.mark.parametrize("fleet", [("roll-paused", "RollPaused", "Pause", 120)], indirect=True)
def test_a_paused_rollout_moves_no_instance_until_resumed(
    fleet: Fleet, control_plane: ControlPlane
) -> None:
    paused = pequod(control_plane, "rollout", "pause", f"transform/{fleet.name}")
    assert paused.returncode == 0, paused.stderr
    spec = fleet.kubectl.get("transform", fleet.name)["spec"]
    assert spec["rollout"]["paused"] is True
    # The Transform as applied keeps the pause: spec.rollout.paused is set in what it applies.
    fleet.rollout_settings += "    paused: true\n"
    fleet.serve(module("2"))
    state = fleet.wait_phase("Paused")
    assert state.get("waves", []) == []
    assert all(ready_on(o, fleet.first_digest) for o in fleet.all())
    status = pequod(control_plane, "rollout", "status", f"transform/{fleet.name}")
    assert status.returncode == 0
    assert status.stdout.startswith("Paused")
    resumed = pequod(control_plane, "rollout", "resume", f"transform/{fleet.name}")
    assert resumed.returncode == 0, resumed.stderr
    final = fleet.wait_phase("Complete")
    fleet.wait_all_on(final["target"]["digest"])
