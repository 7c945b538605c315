"""Fault and load tests against a real control plane (etcd + kube-apiserver, no kwok).

- The operator SIGKILLed at random points while instances are created, updated and deleted.
- kube-apiserver restarted and etcd compacted while changes are made.
- Property-based fuzz (hypothesis) of instance specs and of small broken modules.

They run on a control plane of their own (started once for this module, ~10 s): restarting
the API server and killing the operator must not disturb the session's shared one, and the
operator's log then holds only what these tests caused. Sizes are the constants below; the
figures each test measures are printed (``pytest -s``) and put in its assertion messages.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, cast

import jsonschema
import kubernetes
import pytest
from hypothesis import HealthCheck, Phase, example, given, seed, settings
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException

from pequod.api.names import GROUP, INSTANCE_UID_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE, VERSION
from pequod.controlplane import ControlPlane, ControlPlaneError
from pequod.toolchain.locate import ToolNotFoundError
from tests.operator_harness import (
    REPOSITORY,
    Kubectl,
    OperatorProcess,
    condition,
    inline_transform,
    ready_transform,
    wait_for,
)

pytestmark = [pytest.mark.cluster, pytest.mark.faults]

# -- sizes ---------------------------------------------------------------------------------

SEED = int(os.environ.get("PEQUOD_FAULT_SEED") or random.SystemRandom().randrange(2**32))
"""Seeds every random choice: kill points, changes, hypothesis examples (set it to replay)."""
INSTANCES = 50
"""Live instances in each round of the SIGKILL test."""
ROUNDS = 10
"""Rounds of creates, updates and deletes in the SIGKILL test (the first only creates)."""
KILL_WITHIN_SECONDS = 2.0
"""A kill lands at a random point this long after a round's changes (or after a restart)."""
SECOND_KILL_CHANCE = 0.5
"""The chance of killing the operator again while it catches up after a restart."""
ROUND_CONVERGENCE_SECONDS = 120.0
"""How long a round may take to converge."""
OUTAGE_INSTANCES = 20
"""Instances in the API server restart and etcd compaction test."""
OUTAGE_CONVERGENCE_SECONDS = 90.0
"""How long the operator may take to converge after the API server is back."""
SPEC_EXAMPLES = 40
"""Hypothesis examples of instance specs."""
MODULE_EXAMPLES = 30
"""Hypothesis examples of broken modules."""

MANAGED = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"


# -- the module under test ------------------------------------------------------------------

FAULT_MAP_MODULE = """package faultmap

import "list"

#Metadata: {name: "faultmap", version: "0.1.0", kind: "FaultMap"}

#Input: {
	// Bumped by the test on every update.
	edition: int & >=0 | *0
	// ConfigMaps rendered, each depending on the one before.
	count: int & >=1 & <=4 | *2
}

#Render: {
	input: {
		metadata: {name: string, namespace: string, labels?: {...}, annotations?: {...}}
		spec: #Input
	}
	output: nodes: [for i in list.Range(0, input.spec.count, 1) {
		id: "part\\(i)"
		object: {
			apiVersion: "v1"
			kind:       "ConfigMap"
			metadata: name: "\\(input.metadata.name)-\\(i)"
			data: edition: "\\(input.spec.edition)"
		}
		if i > 0 {dependsOn: ["part\\(i-1)"]}
	}]
}
"""


# -- fixtures -------------------------------------------------------------------------------


def established(kubectl: Kubectl, crd: str) -> bool:
    found = condition(kubectl.get("crd", crd), "Established")
    return bool(found and found["status"] == "True")


@pytest.fixture(scope="module")
def fault_plane() -> Iterator[ControlPlane]:
    """A control plane of this module's own, with Pequod's CRDs."""
    print(f"\nfault tests: seed {SEED} (PEQUOD_FAULT_SEED={SEED} replays it)")
    plane = ControlPlane()
    started = time.monotonic()
    try:
        plane.start()
    except (ToolNotFoundError, ControlPlaneError) as error:
        pytest.fail(f"the local control plane did not start: {error}", pytrace=False)
    try:
        kubectl = Kubectl(plane)
        kubectl.run("apply", "-f", str(REPOSITORY / "manifests" / "crds"))
        # Polled, not `kubectl wait`: that fails outright on a CRD with no conditions yet.
        for crd in ("transforms", "resourcegraphs"):
            wait_for(functools.partial(established, kubectl, f"{crd}.{GROUP}"), what=crd)
        print(f"fault tests: control plane ready in {time.monotonic() - started:.1f} s")
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="module")
def fault_kubectl(fault_plane: ControlPlane) -> Kubectl:
    return Kubectl(fault_plane)


class Api:
    """The Python client's calls these tests make (one request each, no kubectl process),
    typed as the JSON they are."""

    def __init__(self, client: kubernetes.client.ApiClient) -> None:
        self.client = client
        self.custom = kubernetes.client.CustomObjectsApi(client)
        self.core = kubernetes.client.CoreV1Api(client)

    def get(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        if namespace is None:
            found = self.custom.get_cluster_custom_object(GROUP, VERSION, plural, name)
        else:
            found = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name
            )
        return cast(dict[str, Any], found)

    def items(self, plural: str, namespace: str) -> list[dict[str, Any]]:
        listing = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
        return cast(list[dict[str, Any]], cast(dict[str, Any], listing)["items"])

    def create(
        self, plural: str, namespace: str, body: dict[str, Any], **options: Any
    ) -> dict[str, Any]:
        created = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, body, **options
        )
        return cast(dict[str, Any], created)

    def patch(
        self, plural: str, name: str, namespace: str | None, patch: dict[str, Any]
    ) -> dict[str, Any]:
        if namespace is None:
            patched = self.custom.patch_cluster_custom_object(GROUP, VERSION, plural, name, patch)
        else:
            patched = self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name, patch
            )
        return cast(dict[str, Any], patched)

    def delete(self, plural: str, name: str, namespace: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)

    def config_maps(self, namespace: str) -> tuple[list[dict[str, Any]], str]:
        """The rendered ConfigMaps of ``namespace``, and the list's resourceVersion."""
        listing = self._json(
            self.core.list_namespaced_config_map(namespace, label_selector=MANAGED)
        )
        return listing.get("items") or [], str(listing["metadata"]["resourceVersion"])

    def config_map(self, name: str, namespace: str) -> dict[str, Any]:
        return self._json(self.core.read_namespaced_config_map(name, namespace))

    def _json(self, model: object) -> dict[str, Any]:
        return cast(dict[str, Any], self.client.sanitize_for_serialization(model))  # type: ignore[no-untyped-call]

    def create_config_map(self, namespace: str, body: dict[str, Any]) -> None:
        self.core.create_namespaced_config_map(
            namespace, cast(kubernetes.client.V1ConfigMap, body), field_manager="pequod"
        )

    def create_namespace(self, name: str) -> str:
        self.core.create_namespace(
            kubernetes.client.V1Namespace(metadata=kubernetes.client.V1ObjectMeta(name=name))
        )
        return name


@pytest.fixture(scope="module")
def api(fault_plane: ControlPlane) -> Iterator[Api]:
    client: kubernetes.client.ApiClient = kubernetes.config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(fault_plane.kubeconfig)
    )
    # urllib3 warns of every retry while the API server restarts; the test says what matters.
    pool_logger = logging.getLogger("urllib3.connectionpool")
    level = pool_logger.level
    pool_logger.setLevel(logging.ERROR)
    try:
        yield Api(client)
    finally:
        pool_logger.setLevel(level)


@pytest.fixture(scope="module")
def fault_operator(
    fault_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator, logging JSON (so that a traceback is an ``exception`` field)."""
    process = OperatorProcess(
        fault_plane, tmp_path_factory.mktemp("fault-operator") / "operator.log"
    )
    try:
        process.start("--log-format=json")
    except AssertionError:
        pytest.fail(f"the operator did not start:\n{process.log()[-5000:]}", pytrace=False)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def fault_maps(fault_kubectl: Kubectl, fault_operator: OperatorProcess) -> None:
    fault_kubectl.apply(inline_transform("faultmap", FAULT_MAP_MODULE))
    ready_transform(fault_kubectl, "faultmap")


# -- what the test asked for, and what it saw -------------------------------------------------


@dataclass
class Wanted:
    """One instance as the test last wrote it."""

    name: str
    uid: str = ""
    edition: int = 0
    count: int = 2
    counts: dict[int, list[int]] = field(default_factory=dict)
    """The counts asked for in each round (in order), from the one it was created in."""
    deleted_at: float | None = None
    """When the test deleted it (monotonic)."""

    def final_count(self, round_number: int) -> int | None:
        """The count in force at the end of that round (None: not created yet)."""
        earlier = [r for r in self.counts if r <= round_number]
        return self.counts[max(earlier)][-1] if earlier else None

    def kept_throughout(self, round_number: int) -> int:
        """How many of its objects (``NAME-0`` up) the instance rendered all through that
        round and the one before: none of these may be deleted during the round."""
        low = [c for c in [self.final_count(round_number - 1)] if c is not None]
        low.extend(self.counts.get(round_number) or [self.final_count(round_number) or 0])
        return min(low)


@dataclass
class Deletion:
    at: float
    name: str
    uid: str
    missed: bool = False
    """Not seen as an event but found missing by a relist after 410 Gone."""


class DeleteWatch:
    """Every DELETE of a rendered ConfigMap in ``namespace``, from a watch started before the
    first change and kept across API server restarts (a 410 Gone lists again and counts what
    disappeared meanwhile as deleted)."""

    def __init__(self, api: Api, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.deletions: list[Deletion] = []
        self.known: dict[str, str] = {}
        self.reconnects = 0
        self._stop = threading.Event()
        self._resource_version = self._list()
        self._thread = threading.Thread(target=self._run, daemon=True, name="delete-watch")
        self._thread.start()

    def _list(self) -> str:
        items, resource_version = self.api.config_maps(self.namespace)
        fresh = {
            item["metadata"]["name"]: (item["metadata"].get("labels") or {}).get(
                INSTANCE_UID_LABEL, ""
            )
            for item in items
        }
        for name, uid in self.known.items():
            if name not in fresh:
                self.deletions.append(Deletion(time.monotonic(), name, uid, missed=True))
        self.known = fresh
        return resource_version

    def _run(self) -> None:
        while not self._stop.is_set():
            watch = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
            try:
                for event in watch.stream(  # type: ignore[no-untyped-call]
                    self.api.core.list_namespaced_config_map,
                    self.namespace,
                    label_selector=MANAGED,
                    resource_version=self._resource_version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=5,
                ):
                    raw = event["raw_object"]
                    metadata = raw.get("metadata") or {}
                    self._resource_version = metadata.get("resourceVersion", self._resource_version)
                    if event["type"] == "BOOKMARK":
                        continue
                    name = metadata["name"]
                    uid = (metadata.get("labels") or {}).get(INSTANCE_UID_LABEL, "")
                    if event["type"] == "DELETED":
                        self.known.pop(name, None)
                        self.deletions.append(Deletion(time.monotonic(), name, uid))
                    else:
                        self.known[name] = uid
                    if self._stop.is_set():
                        return
            except ApiException as error:
                self.reconnects += 1
                if error.status == 410:
                    self._relist()
                else:
                    self._stop.wait(0.5)
            except Exception:  # the API server restarting: connection refused, reset
                self.reconnects += 1
                self._stop.wait(0.5)

    def _relist(self) -> None:
        while not self._stop.is_set():
            try:
                self._resource_version = self._list()
                return
            except Exception:
                self._stop.wait(0.5)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)


def unwanted_deletions(
    deletions: list[Deletion], wanted: dict[str, Wanted], round_starts: list[float]
) -> list[str]:
    """Deletes of objects an instance still alive still renders: object ``NAME-i`` deleted
    during round r (its changes made, and the round before converged) of an instance whose
    count was above ``i`` in round r and in round r-1. (A delete seen a moment after the next
    round began is judged by that round and the one it belongs to: the same verdict.)"""
    by_uid = {w.uid: w for w in wanted.values()}
    found = []
    for deletion in deletions:
        owner = by_uid.get(deletion.uid)
        if owner is None or (owner.deleted_at is not None and owner.deleted_at <= deletion.at):
            continue
        round_number = max((r for r, at in enumerate(round_starts) if at <= deletion.at), default=0)
        index = int(deletion.name.rsplit("-", 1)[1])
        if index < owner.kept_throughout(round_number):
            found.append(
                f"{deletion.name} in round {round_number} (instance {owner.name} alive, "
                f"counts {owner.final_count(round_number - 1)} -> "
                f"{owner.counts.get(round_number)}"
                f"{', found by a relist' if deletion.missed else ''})"
            )
    return found


# -- driving instances ----------------------------------------------------------------------


class FaultMaps:
    """Creates, updates and deletes FaultMap instances with the Python client (one request
    each, no kubectl process) and checks the cluster against what was asked."""

    def __init__(self, api: Api, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.wanted: dict[str, Wanted] = {}
        self.round_starts: list[float] = []
        """When each round's changes began (monotonic)."""

    def live(self) -> list[Wanted]:
        return [w for w in self.wanted.values() if w.deleted_at is None]

    def create(self, name: str, edition: int, count: int) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "FaultMap",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"edition": edition, "count": count},
        }
        created = self._retry(lambda: self.api.create("faultmaps", self.namespace, body))
        self.wanted[name] = Wanted(
            name, created["metadata"]["uid"], edition, count, {self.round: [count]}
        )

    def update(self, name: str, edition: int, count: int) -> None:
        self._retry(
            lambda: self.api.patch(
                "faultmaps", name, self.namespace, {"spec": {"edition": edition, "count": count}}
            )
        )
        wanted = self.wanted[name]
        wanted.edition, wanted.count = edition, count
        wanted.counts.setdefault(self.round, []).append(count)

    def delete(self, name: str) -> None:
        self.wanted[name].deleted_at = time.monotonic()
        self._retry(lambda: self.api.delete("faultmaps", name, self.namespace))

    @property
    def round(self) -> int:
        return len(self.round_starts) - 1

    def next_round(self) -> None:
        """Marks the start of a round's changes."""
        self.round_starts.append(time.monotonic())

    @staticmethod
    def _retry(call: Any) -> Any:
        """One write, retried while the API server is restarting."""
        deadline = time.monotonic() + 60
        while True:
            try:
                return call()
            except ApiException as error:
                if error.status < 500 or time.monotonic() > deadline:
                    raise
            except Exception:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)

    def problems(self) -> list[str]:
        """What differs from what was asked; empty once converged."""
        try:
            instances = self.api.items("faultmaps", self.namespace)
            graphs = self.api.items("resourcegraphs", self.namespace)
            config_maps, _ = self.api.config_maps(self.namespace)
        except Exception as error:  # the API server restarting
            return [f"cannot list: {type(error).__name__}"]
        problems: list[str] = []
        live = {i["metadata"]["name"]: i for i in instances}
        graph_uids = {g["metadata"]["name"]: g["spec"]["sourceRef"].get("uid", "") for g in graphs}
        objects = {
            (
                c["metadata"]["name"],
                (c["metadata"].get("labels") or {}).get(INSTANCE_UID_LABEL, ""),
            ): (c.get("data") or {}).get("edition")
            for c in config_maps
        }
        expected_objects: dict[tuple[str, str], str] = {}
        for wanted in self.wanted.values():
            found = live.get(wanted.name)
            graph = f"faultmap-{wanted.name}"
            if wanted.deleted_at is not None:
                if found is not None and found["metadata"]["uid"] == wanted.uid:
                    finalizers = found["metadata"].get("finalizers")
                    problems.append(f"{wanted.name}: deleted, still there ({finalizers})")
                if graph_uids.get(graph) == wanted.uid:
                    problems.append(f"{wanted.name}: deleted, its ResourceGraph still there")
                continue
            for index in range(wanted.count):
                expected_objects[(f"{wanted.name}-{index}", wanted.uid)] = str(wanted.edition)
            if found is None:
                problems.append(f"{wanted.name}: missing")
                continue
            generation = found["metadata"].get("generation")
            ready = condition(found, "Ready")
            if not ready or ready["status"] != "True":
                problems.append(f"{wanted.name}: not Ready ({ready})")
            elif (found.get("status") or {}).get("observedGeneration") != generation or ready.get(
                "observedGeneration"
            ) != generation:
                problems.append(f"{wanted.name}: Ready for an older generation")
            if graph_uids.get(graph) != wanted.uid:
                problems.append(f"{wanted.name}: no ResourceGraph")
        for key, edition in expected_objects.items():
            if key not in objects:
                problems.append(f"ConfigMap {key[0]}: missing")
            elif objects[key] != edition:
                problems.append(f"ConfigMap {key[0]}: edition {objects[key]}, not {edition}")
        for key in objects.keys() - expected_objects.keys():
            problems.append(f"ConfigMap {key[0]} (instance uid {key[1]}): left behind")
        return problems

    def converge(self, within: float, what: str) -> float:
        """Waits until nothing differs; returns the seconds it took."""
        started = time.monotonic()
        problems: list[str] = []
        while time.monotonic() - started < within:
            problems = self.problems()
            if not problems:
                return time.monotonic() - started
            time.sleep(0.25)
        shown = "\n  ".join(problems[:40])
        raise AssertionError(
            f"{what}: not converged within {within:.0f} s; {len(problems)} problem(s):\n  {shown}"
        )


def tracebacks(operator: OperatorProcess, offset: int = 0) -> list[str]:
    """The operator's log entries since ``offset`` that carry a traceback."""
    return [
        json.dumps(entry)[:3000]
        for entry in operator.log_entries(offset)
        if "exception" in entry or "Traceback" in str(entry.get("raw", ""))
    ]


# -- 1. SIGKILL -----------------------------------------------------------------------------


def test_operator_killed_at_random_points_converges_without_losing_or_leaking(
    api: Api, fault_operator: OperatorProcess, fault_maps: None
) -> None:
    """Each round: changes (creates, updates, deletes), a SIGKILL at a random point, more
    changes while the operator is dead (to the same instances too: a kill between an apply
    and the status write that records it must not leak the object), a restart, sometimes a
    second kill while it catches up; then the round must converge."""
    rng = random.Random(SEED)
    namespace = api.create_namespace("faults-kill")
    maps = FaultMaps(api, namespace)
    watch = DeleteWatch(api, namespace)
    offset = fault_operator.log_size()
    started = time.monotonic()
    counted = {"kills": 0, "created": 0, "updated": 0, "deleted": 0}

    def change(share: float) -> None:
        """Deletes or updates about ``share`` of the live instances, then creates new ones
        until there are INSTANCES again."""
        for wanted in maps.live():
            roll = rng.random()
            if roll < share / 3:
                maps.delete(wanted.name)
                counted["deleted"] += 1
            elif roll < share:
                maps.update(wanted.name, wanted.edition + 1, rng.randint(1, 4))
                counted["updated"] += 1
        while len(maps.live()) < INSTANCES:
            maps.create(f"fm{counted['created']}", 0, rng.randint(1, 4))
            counted["created"] += 1

    def kill(changes_while_dead: float) -> None:
        time.sleep(rng.uniform(0, KILL_WITHIN_SECONDS))
        fault_operator.kill()
        counted["kills"] += 1
        change(changes_while_dead)
        fault_operator.start("--log-format=json")

    round_seconds: list[float] = []
    try:
        for round_number in range(ROUNDS):
            maps.next_round()
            round_started = time.monotonic()
            change(0.5 if round_number else 0.0)
            kill(0.2)
            if rng.random() < SECOND_KILL_CHANCE:
                kill(0.1)
            maps.converge(ROUND_CONVERGENCE_SECONDS, f"round {round_number}")
            round_seconds.append(time.monotonic() - round_started)
        # Last, every instance goes: nothing may be left behind, no finalizer stuck.
        maps.next_round()
        final_started = time.monotonic()
        for wanted in maps.live()[: len(maps.live()) // 2]:
            maps.delete(wanted.name)
            counted["deleted"] += 1
        time.sleep(rng.uniform(0, KILL_WITHIN_SECONDS))
        fault_operator.kill()
        counted["kills"] += 1
        for wanted in maps.live():
            maps.delete(wanted.name)
            counted["deleted"] += 1
        fault_operator.start("--log-format=json")
        maps.converge(ROUND_CONVERGENCE_SECONDS, "deleting everything")
        final_seconds = time.monotonic() - final_started
    finally:
        watch.stop()
    unwanted = unwanted_deletions(watch.deletions, maps.wanted, maps.round_starts)
    figures = (
        f"SIGKILL: seed {SEED}, {ROUNDS} rounds of {INSTANCES} live instances, "
        f"{counted['created']} created, {counted['updated']} updated, "
        f"{counted['deleted']} deleted, {counted['kills']} kills; "
        f"{len(watch.deletions)} deletes seen ({sum(d.missed for d in watch.deletions)} by a "
        f"relist), {len(unwanted)} of wanted objects; a round converged "
        f"{min(round_seconds):.1f}-{max(round_seconds):.1f} s after its first change "
        f"(mean {sum(round_seconds) / len(round_seconds):.1f} s, restarts included), "
        f"deleting everything {final_seconds:.1f} s; total {time.monotonic() - started:.0f} s"
    )
    print(figures)
    assert not unwanted, f"{figures}\ndeleted while wanted:\n  " + "\n  ".join(unwanted)
    assert not (found := tracebacks(fault_operator, offset)), (
        f"{figures}\ntracebacks:\n" + "\n".join(found[:5])
    )


# -- 2. kube-apiserver restarted, etcd compacted ------------------------------------------------


def test_api_server_restart_and_etcd_compaction_miss_no_event(
    api: Api,
    fault_plane: ControlPlane,
    fault_operator: OperatorProcess,
    fault_maps: None,
) -> None:
    """Changes made just before kube-apiserver stops, right after it is back (while the
    operator's watches are still down or reconnecting) and after etcd is compacted past every
    resourceVersion the operator had seen: all of them must be reconciled (the operator's
    watches resume with 410 Gone and list again), within a bound, with no traceback and no
    restart of the operator."""
    rng = random.Random(SEED + 1)
    namespace = api.create_namespace("faults-outage")
    maps = FaultMaps(api, namespace)
    maps.next_round()
    for index in range(OUTAGE_INSTANCES):
        maps.create(f"out{index}", 0, rng.randint(1, 4))
    maps.converge(ROUND_CONVERGENCE_SECONDS, "before the outage")
    watch = DeleteWatch(api, namespace)
    pid = fault_operator.pid
    offset = fault_operator.log_size()
    created = OUTAGE_INSTANCES

    def change(share: float) -> None:
        nonlocal created
        for wanted in maps.live():
            roll = rng.random()
            if roll < share / 3:
                maps.delete(wanted.name)
            elif roll < share:
                maps.update(wanted.name, wanted.edition + 1, rng.randint(1, 4))
        for _ in range(3):
            maps.create(f"out{created}", 0, rng.randint(1, 4))
            created += 1

    try:
        maps.next_round()
        change(0.3)  # in flight as the API server stops
        outage_started = time.monotonic()
        fault_plane.restart_apiserver()
        outage = time.monotonic() - outage_started
        change(0.3)  # the operator's watches are still down or reconnecting
        compacted = fault_plane.compact_etcd()
        change(0.3)  # after the compaction
        seconds = maps.converge(OUTAGE_CONVERGENCE_SECONDS, "after the outage")
    finally:
        watch.stop()
    entries = fault_operator.log_entries(offset)
    relists = sum(1 for e in entries if e.get("event") == "watch expired, listing again")
    retried = sum(1 for e in entries if str(e.get("event", "")).endswith("retrying"))
    unwanted = unwanted_deletions(watch.deletions, maps.wanted, maps.round_starts)
    figures = (
        f"API server restart: {OUTAGE_INSTANCES} instances, {len(maps.wanted)} created in all, "
        f"{sum(w.deleted_at is not None for w in maps.wanted.values())} deleted; API server "
        f"down and back in {outage:.1f} s, etcd compacted at revision {compacted}; operator: "
        f"{relists} watches resumed with 410 Gone and listed again, {retried} retried requests "
        f"or watches; {len(watch.deletions)} deletes seen, {len(unwanted)} of wanted objects; "
        f"converged {seconds:.1f} s after the last change "
        f"({time.monotonic() - outage_started:.1f} s after the API server stopped)"
    )
    print(figures)
    assert fault_operator.alive(), f"{figures}\noperator crashed"
    assert fault_operator.pid == pid, f"{figures}\noperator restarted"
    assert not unwanted, f"{figures}\ndeleted while wanted:\n  " + "\n  ".join(unwanted)
    assert relists > 0, f"{figures}\nno watch resumed past the compaction: nothing was tested"
    assert not (found := tracebacks(fault_operator, offset)), (
        f"{figures}\ntracebacks:\n" + "\n".join(found[:5])
    )


# -- 3. property-based fuzz ------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What an instance's Ready condition must end with."""

    ready: bool
    reason: str
    names: tuple[str, ...] = ()
    """Text the message must contain, one of these at least: the problem, named (a spec with
    several problems may be told of any one)."""

    def met_by(self, ready: dict[str, Any] | None) -> bool:
        if ready is None or (ready["status"] == "True") != self.ready:
            return False
        message = ready.get("message") or ""
        named = not self.names or any(n in message for n in self.names)
        return ready.get("reason") == self.reason and bool(message) and named


def settle(
    api: Api,
    namespace: str,
    plural: str,
    name: str,
    expected: Outcome,
    *,
    within: float = 30.0,
) -> dict[str, Any]:
    """Waits until the instance's Ready condition, for its current generation, is
    ``expected``; fails with the condition it has otherwise."""
    deadline = time.monotonic() + within
    ready: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        found = api.get(plural, name, namespace)
        ready = condition(found, "Ready")
        generation = found["metadata"].get("generation")
        if ready and ready.get("observedGeneration") == generation and expected.met_by(ready):
            return ready
        time.sleep(0.2)
    raise AssertionError(f"{plural}/{name}: Ready is {ready}, not {expected}")


def no_tracebacks_and_alive(operator: OperatorProcess, pid: int | None, offset: int) -> None:
    found = tracebacks(operator, offset)
    assert not found, "the operator logged tracebacks:\n" + "\n".join(found[:5])
    assert operator.alive(), "the operator crashed"
    assert operator.pid == pid, "the operator restarted"


FUZZ_SPEC_MODULE = r"""package fuzzspec

#Metadata: {name: "fuzzspec", version: "0.1.0", kind: "FuzzSpec"}

#Input: {
	// A short lowercase word.
	label: string & =~"^[a-z]{1,12}$" | *"plain"
	// The lower bound.
	min: int & >=0 & <=100 | *1
	// Not below min: a relation the CRD schema cannot express, checked at render.
	max: int & <=100 | *3
	mode: "open" | "closed" | *"open"
	// Keys of the rendered ConfigMap: the API server decides which it accepts.
	keys?: [...string]
	limits?: {
		cpu:    int & >=1 | *1
		memory: string | *"64Mi"
	}
	// Any text: rendered as it is.
	note: string | *""
}

#Render: {
	input: {
		metadata: {name: string, namespace: string, labels?: {...}, annotations?: {...}}
		spec: #Input
	}
	let high = input.spec.max & >=input.spec.min
	output: {
		nodes: [{
			id: "settings"
			object: {
				apiVersion: "v1"
				kind:       "ConfigMap"
				metadata: name: input.metadata.name
				data: {
					label: input.spec.label
					range: "\(input.spec.min)-\(high)"
					note:  input.spec.note
					if input.spec.keys != _|_ {
						for k in input.spec.keys {(k): "set"}
					}
				}
			}
		}]
		if input.spec.mode == "closed" && input.spec.label == "deny" {
			violations: [{path: "spec.label", message: "label \"deny\" is refused in closed mode"}]
		}
	}
}
"""

UNLUCKY_POLICY = """package unlucky

#Policy: {
	input: {...}
	output: {...}
	violations: [...{path: string, message: string, severity: *"Error" | "Warning"}]
	violations: [if input.spec.min == 13 {path: "spec.min", message: "13 is refused by policy"}]
}
"""

CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")


def config_key(key: str) -> bool:
    """Whether the API server takes ``key`` as a ConfigMap key (IsConfigMapKey)."""
    return (
        bool(CONFIG_KEY.fullmatch(key))
        and len(key) <= 253
        and key not in (".", "..")
        and not key.startswith("..")
    )


KEYS = st.one_of(
    st.from_regex(r"[-._a-zA-Z0-9]{1,12}", fullmatch=True),
    st.sampled_from(["label", "range", "", ".", "..", "..k", "a/b", "ü", "k" * 254]),
    st.text(max_size=6),
)
VALID_SPECS = st.fixed_dictionaries(
    {},
    optional={
        "label": st.one_of(
            st.from_regex(r"[a-z]{1,12}", fullmatch=True), st.sampled_from(["deny", "set"])
        ),
        "min": st.one_of(st.integers(0, 100), st.just(13)),
        "max": st.integers(1, 100),
        "mode": st.sampled_from(["open", "closed"]),
        "keys": st.lists(KEYS, max_size=4),
        "limits": st.fixed_dictionaries(
            {}, optional={"cpu": st.integers(1, 4), "memory": st.text(max_size=8)}
        ),
        "note": st.text(max_size=12),
    },
)
"""Specs the CRD's schema allows: the module, its violations or the API server decide."""
SPECS = st.fixed_dictionaries(
    {},
    optional={
        "label": st.one_of(
            st.from_regex(r"[a-z]{1,12}", fullmatch=True),
            st.sampled_from(["deny", "", "Upper", "two words", "x" * 13]),
            st.integers(-3, 3),
        ),
        "min": st.one_of(st.integers(-5, 105), st.sampled_from(["7", 1.5, True])),
        "max": st.one_of(st.integers(-5, 105), st.sampled_from(["7", 2.5, False])),
        "mode": st.sampled_from(["open", "closed", "ajar", 3]),
        "keys": st.one_of(st.lists(KEYS, max_size=4), st.just("not-a-list")),
        "limits": st.one_of(
            st.fixed_dictionaries(
                {},
                optional={
                    "cpu": st.one_of(st.integers(-1, 4), st.just("1")),
                    "memory": st.one_of(st.just("64Mi"), st.integers(0, 9)),
                },
            ),
            st.just([1]),
        ),
        "bogus": st.integers(),
    },
)
"""Anything: mostly outside the schema, for the API server to refuse."""


def expected_render(spec: dict[str, Any]) -> Outcome:
    """What the module makes of a spec the API server accepted (its defaults filled in)."""
    label = spec.get("label", "plain")
    low, high = spec.get("min", 1), spec.get("max", 3)
    keys = spec.get("keys") or []
    problems = []
    if high < low:
        problems.append(f"invalid value {high} (out of bound >={low})")
    if "range" in keys or ("label" in keys and label != "set"):
        problems.extend(["conflicting values", '"set" is not allowed'])
    if problems:
        return Outcome(False, "RenderFailed", tuple(problems))
    denied = []
    if spec.get("mode") == "closed" and label == "deny":
        denied.append('label "deny" is refused in closed mode')  # by the module
    if low == 13:
        denied.append("13 is refused by policy")  # by the Transform's policy
    if denied:
        return Outcome(False, "PolicyViolation", tuple(denied))
    bad = [k for k in keys if not config_key(k)]
    if bad:
        return Outcome(False, "GraphFailed", ("settings:", "data["))
    return Outcome(True, "GraphReady")


@pytest.fixture(scope="module")
def fuzz_specs(fault_kubectl: Kubectl, fault_operator: OperatorProcess) -> dict[str, Any]:
    """The FuzzSpec kind, served; returns its CRD's spec schema (what the API server checks)."""
    policy = "\n".join("      " + line for line in UNLUCKY_POLICY.splitlines())
    fault_kubectl.apply(
        inline_transform(
            "fuzzspec", FUZZ_SPEC_MODULE, f"  policies:\n  - type: inline\n    ref: |\n{policy}\n"
        )
    )
    ready_transform(fault_kubectl, "fuzzspec")
    crd = fault_kubectl.get("crd", "fuzzspecs.platform.pequod.io")
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec_schema: dict[str, Any] = json.loads(json.dumps(schema["properties"]["spec"]))
    # Strict field validation: an unknown field is refused, not pruned.
    spec_schema["additionalProperties"] = False
    spec_schema["properties"]["limits"]["additionalProperties"] = False
    return spec_schema


def test_fuzzed_instance_specs_end_in_a_condition_that_names_the_problem(
    api: Api,
    fault_operator: OperatorProcess,
    fuzz_specs: dict[str, Any],
) -> None:
    """Specs outside the CRD's schema are refused by the API server with a 422 naming the
    field; specs inside it end Ready, or Ready=False with the reason and message the module,
    the policy or the API server gives. The operator never crashes or logs a traceback."""
    namespace = api.create_namespace("faults-fuzz-specs")
    validator = jsonschema.Draft4Validator(fuzz_specs)
    pid, offset = fault_operator.pid, fault_operator.log_size()
    tally: dict[str, int] = {}
    started = time.monotonic()

    @seed(SEED)
    @settings(
        max_examples=SPEC_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(spec=st.one_of(VALID_SPECS, VALID_SPECS, VALID_SPECS, SPECS))
    # Each character a YAML decoder takes otherwise than JSON, as a note and as a key.
    @example(spec={"note": "\U0001f600 \x7f\x85\u2028\u2029\ufeff\x00\t\\\"'"})
    @example(spec={"keys": ["\U0001f600"]})
    def check(spec: dict[str, Any]) -> None:
        name = f"fs{sum(tally.values())}"
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "FuzzSpec",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
        errors = sorted(validator.iter_errors(spec), key=lambda e: list(e.path))
        refused: ApiException | None = None
        try:
            api.create("fuzzspecs", namespace, body, field_validation="Strict")
        except ApiException as error:
            refused = error
        if refused is not None:
            tally["refused"] = tally.get("refused", 0) + 1
            message = json.loads(refused.body or "{}").get("message", "")
            assert errors, f"{spec!r}: refused although the schema allows it: {message}"
            # An unknown field fails strict decoding (400) before the schema is checked (422).
            unknown = any(e.validator == "additionalProperties" for e in errors)
            wanted = (400, "unknown field") if unknown else (422, "spec.")
            assert (refused.status, wanted[1] in message) == (wanted[0], True), (
                f"{spec!r}: wanted {wanted[0]} naming the field, got {refused.status} {message}"
            )
            return
        assert not errors, f"{spec!r}: accepted although {errors[0].message}"
        expected = expected_render(spec)
        tally[expected.reason] = tally.get(expected.reason, 0) + 1
        settle(api, namespace, "fuzzspecs", name, expected)
        if expected.ready:
            data = api.config_map(name, namespace).get("data")
            assert (data or {}).get("note") == spec.get("note", ""), f"{spec!r}: {data!r}"

    try:
        check()
    finally:
        print(
            f"spec fuzz: {sum(tally.values())} specs (seed {SEED}): "
            + ", ".join(f"{n} {k}" for k, n in sorted(tally.items()))
            + f"; {time.monotonic() - started:.0f} s"
        )
    no_tracebacks_and_alive(fault_operator, pid, offset)


FUZZ_MODULE_HEAD = """package fuzzmod

#Metadata: {name: "fuzzmod", version: "0.1.0", kind: "FuzzMod"}

#Input: {
	// Bumped by the test for every module, so that each is rendered once.
	seed: int | *0
}

#Render: {
	input: {
		metadata: {name: string, namespace: string, labels?: {...}, annotations?: {...}}
		spec: #Input
	}
"""


def fuzz_module(nodes: str, extra: str = "") -> str:
    return FUZZ_MODULE_HEAD + f"\toutput: nodes: {nodes}\n{extra}}}\n"


def config_map_node(node_id: str, fields: str = "", object_fields: str = "") -> str:
    return (
        f'{{id: "{node_id}", {fields} object: {{apiVersion: "v1", kind: "ConfigMap", '
        f'metadata: {{name: "\\(input.metadata.name)-{node_id}"{object_fields}}}, '
        'data: seed: "\\(input.spec.seed)"}}'
    )


GOOD_FUZZ_MODULE = fuzz_module(f"[{config_map_node('a')}]")


@dataclass(frozen=True)
class BrokenModule:
    """A generated module and how it must fail: the Transform (``transform=True``) or the
    instance, with this reason and a message naming the problem."""

    category: str
    source: str
    expected: Outcome
    transform: bool = False


NODE_IDS = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
PLAIN_OBJECT = '{apiVersion: "v1", kind: "ConfigMap", metadata: name: "x"}'
# Nodes of the wrong shape, and what the message must name.
BAD_SHAPES = [
    (f"{{object: {PLAIN_OBJECT}}}", "id"),
    (f'{{id: "Not_A_Label", object: {PLAIN_OBJECT}}}', "Not_A_Label"),
    ('{id: "a", object: {apiVersion: "v1", metadata: name: "x"}}', "kind"),
    ('{id: "a", object: {apiVersion: 1, kind: "ConfigMap", metadata: name: "x"}}', "apiVersion"),
    ('{id: "a", object: {apiVersion: "v1", kind: "ConfigMap"}}', "metadata"),
    ('{id: "a", object: 5}', "object"),
    (f'{{id: "a", readyWhen: [{{type: "Bogus"}}], object: {PLAIN_OBJECT}}}', "readyWhen"),
    (f'{{id: "a", extra: true, object: {PLAIN_OBJECT}}}', "extra"),
]
CATEGORIES = [
    "syntax",
    "reserved-field",
    "shape",
    "cycle",
    "self-dependency",
    "missing-dependency",
    "cel-syntax",
    "cel-runtime",
    "other-namespace",
    "cluster-scoped",
    "duplicate-id",
    "conflict",
    "incomplete",
    "unknown-kind",
]


def ready_when_cel(expression: str) -> str:
    return f'readyWhen: [{{type: "CEL", expression: {json.dumps(expression)}}}],'


def render_failure(category: str, nodes: list[str], *names: str) -> BrokenModule:
    return BrokenModule(
        category, fuzz_module(f"[{', '.join(nodes)}]"), Outcome(False, "RenderFailed", names)
    )


@st.composite
def broken_modules(draw: st.DrawFn) -> BrokenModule:
    """A module broken in one of CATEGORIES' ways, with random names and positions."""
    category = draw(st.sampled_from(CATEGORIES))
    ids = draw(st.lists(NODE_IDS, min_size=2, max_size=4, unique=True))
    word = draw(NODE_IDS)
    if category == "syntax":
        lines = GOOD_FUZZ_MODULE.splitlines()
        at = draw(st.integers(2, len(lines)))
        junk = draw(st.sampled_from(["{", "&&", ":::", "](", '"open', "output: nodes: [,]"]))
        source = "\n".join([*lines[:at], junk, *lines[at:]]) + "\n"
        return BrokenModule(category, source, Outcome(False, "InvalidModule"), transform=True)
    if category == "reserved-field":
        source = GOOD_FUZZ_MODULE.replace(
            "seed: int | *0", "seed: int | *0\n\tplatformRef: {type: string, ref: string}"
        )
        return BrokenModule(
            category, source, Outcome(False, "InvalidModule", ("platformRef",)), transform=True
        )
    if category == "shape":
        node, named = draw(st.sampled_from(BAD_SHAPES))
        if draw(st.booleans()):
            source = fuzz_module(f'"{word}"')  # nodes: not a list at all
            named = "output.nodes"
        else:
            source = fuzz_module(f"[{node}]")
        expected = Outcome(False, "RenderFailed", (named,))
        return BrokenModule(category, source, expected)
    if category == "cycle":
        return render_failure(
            category,
            [
                config_map_node(node, f'dependsOn: ["{ids[(i + 1) % len(ids)]}"],')
                for i, node in enumerate(ids)
            ],
            "dependency cycle",
        )
    if category == "self-dependency":
        node = config_map_node(ids[0], f'dependsOn: ["{ids[0]}"],')
        return render_failure(category, [node], f"node {ids[0]!r} depends on itself")
    if category == "missing-dependency":
        node = config_map_node(ids[0], f'dependsOn: ["{ids[1]}"],')
        return render_failure(category, [node], f"depends on {ids[1]!r}, which is not a node")
    if category == "cel-syntax":
        expression = draw(
            st.sampled_from([f"object.{word}.", f"(({word}", f"{word} +", "== true", f"{word})"])
        )
        node = config_map_node(ids[0], ready_when_cel(expression))
        return render_failure(category, [node], "invalid CEL")
    if category == "cel-runtime":
        # Valid CEL that cannot be evaluated on the object: the node waits, and says why.
        expression = draw(
            st.sampled_from(
                [f"object.data.{word} == 'x'", f"object.status.{word} > 1", "object.data.seed"]
            )
        )
        node = config_map_node(ids[0], ready_when_cel(expression))
        expected = Outcome(False, "GraphExecuting", (f"{ids[0]}: {expression}",))
        return BrokenModule(category, fuzz_module(f"[{node}]"), expected)
    if category == "other-namespace":
        node = config_map_node(ids[0], "", f', namespace: "elsewhere-{word}"')
        return render_failure(category, [node], f"is in namespace 'elsewhere-{word}'")
    if category == "cluster-scoped":
        kind, api_version = draw(
            st.sampled_from([("Namespace", "v1"), ("ClusterRole", "rbac.authorization.k8s.io/v1")])
        )
        node = (
            f'{{id: "{ids[0]}", object: {{apiVersion: "{api_version}", kind: "{kind}", '
            f'metadata: name: "fz-{word}"}}}}'
        )
        return render_failure(category, [node], "cluster-scoped")
    if category == "duplicate-id":
        nodes = [config_map_node(ids[0]), config_map_node(ids[0], "", f', labels: x: "{word}"')]
        return render_failure(category, nodes, f"duplicate node id {ids[0]!r}")
    if category == "conflict":
        # Only the instance makes it conflict (the Transform is checked with the defaults).
        labels = f', labels: x: "{word}!", labels: x: input.metadata.name'
        node = config_map_node(ids[0], "", labels)
        return render_failure(category, [node], "conflicting values")
    if category == "incomplete":
        node = config_map_node(ids[0], "", ", labels: x: string")
        return render_failure(category, [node], "incomplete", "non-concrete")
    assert category == "unknown-kind"
    node = (
        f'{{id: "{ids[0]}", object: {{apiVersion: "example.com/v1", kind: "Nope{word}", '
        'metadata: name: "\\(input.metadata.name)"}}'
    )
    expected = Outcome(False, "GraphExecuting", (f"Nope{word}",))
    return BrokenModule(category, fuzz_module(f"[{node}]"), expected)


def test_fuzzed_broken_modules_end_in_a_condition_that_names_the_problem(
    api: Api,
    fault_kubectl: Kubectl,
    fault_operator: OperatorProcess,
) -> None:
    """One Transform, fed a generated broken module after another (its #Input never changes,
    so no breaking change is refused), and one instance, bumped for each: a module that does
    not compile fails the Transform, anything else its instance, each with a reason and a
    message naming the problem; a good module in between must work again. The operator never
    crashes or logs a traceback."""
    namespace = api.create_namespace("faults-fuzz-modules")
    fault_kubectl.apply(inline_transform("fuzzmod", GOOD_FUZZ_MODULE))
    ready_transform(fault_kubectl, "fuzzmod")
    api.create(
        "fuzzmods",
        namespace,
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "FuzzMod",
            "metadata": {"name": "probe", "namespace": namespace},
            "spec": {"seed": 0},
        },
    )
    settle(api, namespace, "fuzzmods", "probe", Outcome(True, "GraphReady"))
    pid, offset = fault_operator.pid, fault_operator.log_size()
    tally: dict[str, int] = {}
    started = time.monotonic()

    def serve(source: str) -> dict[str, Any] | None:
        """Gives the Transform ``source``; returns its Ready condition once it has looked."""
        transform = api.patch("transforms", "fuzzmod", None, {"spec": {"cueRef": {"ref": source}}})
        generation = transform["metadata"]["generation"]

        def looked() -> dict[str, Any] | None:
            found = api.get("transforms", "fuzzmod")
            if (found.get("status") or {}).get("observedGeneration") != generation:
                return None
            return condition(found, "Ready")

        result: dict[str, Any] | None = wait_for(looked, within=30, what="Transform fuzzmod")
        return result

    def render(expected: Outcome) -> None:
        seed_value = sum(tally.values()) + 1
        api.patch("fuzzmods", "probe", namespace, {"spec": {"seed": seed_value}})
        settle(api, namespace, "fuzzmods", "probe", expected)

    @seed(SEED)
    @settings(
        max_examples=MODULE_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(module=broken_modules())
    def check(module: BrokenModule) -> None:
        tally[module.category] = tally.get(module.category, 0) + 1
        ready = serve(module.source)
        if module.transform:
            assert module.expected.met_by(ready), (
                f"{module.category}: Transform Ready is {ready}, not {module.expected}\n"
                f"{module.source}"
            )
            return
        assert (ready or {}).get("status") == "True", f"{module.category}: {ready}\n{module.source}"
        try:
            render(module.expected)
        except AssertionError as error:
            raise AssertionError(f"{module.category}: {error}\n{module.source}") from None
        # A good module again: the instance recovers.
        serve(GOOD_FUZZ_MODULE)
        render(Outcome(True, "GraphReady"))

    try:
        check()
    finally:
        print(
            f"module fuzz: {sum(tally.values())} modules (seed {SEED}): "
            + ", ".join(f"{n} {k}" for k, n in sorted(tally.items()))
            + f"; {time.monotonic() - started:.0f} s"
        )
    no_tracebacks_and_alive(fault_operator, pid, offset)


# -- the window between an apply and the status write that records it -------------------------


def unrecorded_part(api: Api, namespace: str, instance: str, uid: str, index: int) -> None:
    """Creates ConfigMap INSTANCE-INDEX exactly as the operator applies node partINDEX: what a
    pass leaves when it is killed after that apply and before the graph's status write (the
    inventory never lists it)."""
    api.create_config_map(
        namespace,
        {
            "metadata": {
                "name": f"{instance}-{index}",
                "labels": {
                    "app.kubernetes.io/managed-by": "pequod",
                    "platform.pequod.io/transform": "faultmap",
                    "platform.pequod.io/instance-kind": "FaultMap",
                    "platform.pequod.io/instance-name": instance,
                    INSTANCE_UID_LABEL: uid,
                },
                "annotations": {
                    "platform.pequod.io/node-id": f"part{index}",
                    "platform.pequod.io/resource-graph": f"{namespace}/faultmap-{instance}",
                },
            },
            "data": {"edition": "1"},
        },
    )


def test_object_applied_but_never_recorded_is_pruned_and_deleted(
    api: Api, fault_operator: OperatorProcess, fault_maps: None
) -> None:
    """The state a SIGKILL between an apply and the status write leaves, made on purpose.

    Reproduction (both halves failed before the executor looked for such objects):
    1. ``pruned``: count 2, converged. Count 3 rendered into the graph, whose pass applies
       ``pruned-2`` and is killed before its status write; restarted, count 1 (changed
       meanwhile) rendered into the graph, killed again before the graph's pass (all made
       by hand here, the operator killed first). The restarted operator must delete
       ``pruned-1`` (in the inventory) and ``pruned-2`` (in no inventory, in no graph).
    2. ``deleted``: count 1, converged. Operator killed; ``deleted-1`` applied by a pass that
       was killed (by hand); the instance deleted. Nothing of it may be left."""
    namespace = api.create_namespace("faults-unrecorded")
    maps = FaultMaps(api, namespace)
    maps.next_round()
    maps.create("pruned", 0, 2)
    maps.create("deleted", 0, 1)
    maps.converge(60, "before the kill")
    fault_operator.kill()
    # What the operator did before it was killed, made by hand: count 3 rendered into the
    # graph, a pass applied pruned-2 and was killed before its status write; restarted, it
    # rendered count 1 (changed meanwhile) into the graph and was killed again before the
    # graph's pass.
    maps.update("pruned", 1, 1)
    graph = api.get("resourcegraphs", "faultmap-pruned", namespace)
    first_node_only = {"spec": {"nodes": graph["spec"]["nodes"][:1]}}
    api.patch("resourcegraphs", "faultmap-pruned", namespace, first_node_only)
    unrecorded_part(api, namespace, "pruned", maps.wanted["pruned"].uid, 2)
    unrecorded_part(api, namespace, "deleted", maps.wanted["deleted"].uid, 1)
    maps.delete("deleted")
    fault_operator.start("--log-format=json")
    seconds = maps.converge(60, "after the restart")
    print(f"unrecorded objects: pruned and deleted {seconds:.1f} s after the restart")


# -- adoption killed midway -------------------------------------------------------------------

ADOPTED_CHAIN_MODULE = """\
package chain

#Input: {}
#Render: {
	input: {metadata: {name: string, namespace: string, labels?: _, annotations?: _}, spec: #Input}
	output: nodes: [for i in [0, 1, 2, 3, 4] {
		id: "link\\(i)"
		object: {
			apiVersion: "v1", kind: "ConfigMap"
			metadata: name: "\\(input.metadata.name)-\\(i)"
			data: value: "pequod"
		}
		// data.ready is not rendered: it stays its owner's, and gates the next link.
		readyWhen: [{type: "CEL", expression: "object.data.ready == 'true'"}]
		if i > 0 {dependsOn: ["link\\(i-1)"]}
	}]
}
"""


def chain_links(kubectl: Kubectl, namespace: str) -> dict[str, dict[str, Any]]:
    listing = kubectl.get("configmaps", "-n", namespace, "--show-managed-fields")
    return {c["metadata"]["name"]: c for c in listing["items"] if c["metadata"]["name"][-2] == "-"}


def shared_value(link: dict[str, Any]) -> set[str]:
    """The managers owning data.value besides Pequod."""
    return {
        entry["manager"]
        for entry in link["metadata"].get("managedFields") or []
        if entry["manager"] != "pequod"
        and "f:value" in (entry.get("fieldsV1") or {}).get("f:data", {})
    }


def test_operator_killed_while_adopting_five_objects_converges_and_deletes_none(
    fault_kubectl: Kubectl, fault_operator: OperatorProcess
) -> None:
    """Five ConfigMaps made by `kubectl create`, adopted one after the other (each link is
    ready only when the test says so); the operator SIGKILLed right after the third is taken,
    and the fifth is left in the state of a kill between a take-over's apply and its hand-over
    of fields (made by hand). Restarted, it must adopt them all, hand every field over,
    record each adoption, and delete none."""
    kubectl = fault_kubectl
    kubectl.apply(
        inline_transform(
            "chain",
            ADOPTED_CHAIN_MODULE,
            "  kind: Chain\n  adoption:\n    allowedStrategies: [TakeOwnership]\n",
        )
    )
    ready_transform(kubectl, "chain")
    namespace = "faults-adoption"
    kubectl.run("create", "namespace", namespace)
    for i in range(5):
        kubectl.run(
            "create",
            "configmap",
            f"links-{i}",
            "-n",
            namespace,
            "--from-literal=value=pequod",
            "--from-literal=ready=false",
        )
    uids = {name: c["metadata"]["uid"] for name, c in chain_links(kubectl, namespace).items()}
    offset = fault_operator.log_size()
    kubectl.apply(
        "apiVersion: platform.pequod.io/v1alpha1\nkind: Chain\n"
        f"metadata:\n  name: links\n  namespace: {namespace}\n"
        "  annotations: {pequod.io/adopt: TakeOwnership}\nspec: {}\n"
    )

    def adopted(name: str) -> bool:
        labels = (kubectl.get("configmap", name, "-n", namespace) or {})["metadata"].get(
            "labels"
        ) or {}
        return labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE

    def ready(i: int) -> None:
        kubectl.run(
            "patch",
            "configmap",
            f"links-{i}",
            "-n",
            namespace,
            "--type=merge",
            "-p",
            '{"data":{"ready":"true"}}',
        )

    for i in range(3):
        wait_for(functools.partial(adopted, f"links-{i}"), what=f"links-{i} adopted")
        if i < 2:
            ready(i)
    fault_operator.kill()
    assert not adopted("links-3")
    assert not adopted("links-4")
    # links-4 as a pass killed between its take-over's apply and the hand-over leaves it:
    # Pequod's labels and adoption marks applied, data.value still shared with kubectl.
    instance = kubectl.get("chain", "links", "-n", namespace)
    graph = kubectl.get("resourcegraph", "chain-links", "-n", namespace)
    node = next(n for n in graph["spec"]["nodes"] if n["id"] == "link4")
    marked = json.loads(json.dumps(node["object"]))
    marked["metadata"].update(
        namespace=namespace,
        labels={
            MANAGED_BY_LABEL: MANAGED_BY_VALUE,
            "platform.pequod.io/transform": "chain",
            "platform.pequod.io/instance-kind": "Chain",
            "platform.pequod.io/instance-name": "links",
            INSTANCE_UID_LABEL: instance["metadata"]["uid"],
        },
        annotations={
            "platform.pequod.io/node-id": "link4",
            "platform.pequod.io/resource-graph": f"{namespace}/chain-links",
            "platform.pequod.io/adopted-at": "2026-01-01T00:00:00Z",
            "platform.pequod.io/adopted-from": "kubectl-create",
        },
    )
    # The value kubectl set is the rendered one: shared, as the apply leaves it.
    kubectl.apply(
        json.dumps(marked), "--server-side", "--field-manager=pequod", "--force-conflicts"
    )
    link4 = chain_links(kubectl, namespace)["links-4"]
    assert shared_value(link4) == {"kubectl-create"}, link4["metadata"]
    for i in range(2, 5):
        ready(i)
    fault_operator.start("--log-format=json")

    def converged() -> dict[str, Any] | None:
        found = kubectl.get("chain", "links", "-n", namespace)
        ready_condition = condition(found, "Ready") or {}
        if ready_condition.get("status") != "True":
            return None
        return found if (found.get("status") or {}).get("adoptedNodes") == 5 else None

    found = wait_for(converged, within=90, what="the chain Ready with 5 adopted")
    links = chain_links(kubectl, namespace)
    assert {name: c["metadata"]["uid"] for name, c in links.items()} == uids  # none deleted
    for name, link in links.items():
        assert link["data"] == {"value": "pequod", "ready": "true"}, (name, link["data"])
        assert shared_value(link) == set(), (name, link["metadata"]["managedFields"])
        assert link["metadata"]["labels"][INSTANCE_UID_LABEL] == found["metadata"]["uid"]
    graph = kubectl.get("resourcegraph", "chain-links", "-n", namespace)
    assert len(graph["status"]["inventory"]) == 5
    for node_status in graph["status"]["nodes"]:
        assert "kubectl-create" in node_status["adoptedFrom"], node_status
    assert not (found_tracebacks := tracebacks(fault_operator, offset)), found_tracebacks[:3]
    kubectl.run("delete", "namespace", namespace, "--wait=false")
    kubectl.run("delete", "transform", "chain", "--wait=false")


GATED_MODULE = """\
package gated

#Input: {}
#Render: {
	input: {metadata: {name: string, namespace: string, labels?: _, annotations?: _}, spec: #Input}
	output: nodes: [{
		id: "config"
		object: {
			apiVersion: "v1", kind: "ConfigMap", metadata: name: input.metadata.name
			data: version: "VERSION"
		}
		GATE
	}]
}
"""
"""Version 1 is Ready at once; version 2 only once the test sets data.ready (which the module
does not render, so it stays the test's across applies)."""


def gated_module(version: str) -> str:
    gate = (
        'readyWhen: [{type: "CEL", expression: "has(object.data.ready) && '
        "object.data.ready == 'true'\"}]"
        if version == "2"
        else ""
    )
    return GATED_MODULE.replace("VERSION", version).replace("GATE", gate)


def test_operator_killed_mid_rollout_resumes_without_repeating_a_wave(
    fault_kubectl: Kubectl, fault_operator: OperatorProcess
) -> None:
    """12 instances, a canary of 2 then waves of 5; the operator SIGKILLed while the second
    wave waits. Restarted, the rollout goes on from that wave: the waves already started keep
    their instances and start times, and every instance moved once (two revisions each)."""
    kubectl = fault_kubectl
    namespace = "faults-rollout"
    settings = (
        "  kind: Gated\n  rollout:\n    strategy: Waves\n    canary: {instances: 2}\n"
        "    waveSize: 5\n    waveDeadlineSeconds: 600\n"
    )
    kubectl.apply(inline_transform("gated", gated_module("1"), settings))
    ready_transform(kubectl, "gated")
    kubectl.run("create", "namespace", namespace)
    names = [f"g{i:02d}" for i in range(12)]
    kubectl.apply(
        "\n---\n".join(
            f"apiVersion: platform.pequod.io/v1alpha1\nkind: Gated\n"
            f"metadata:\n  name: {name}\n  namespace: {namespace}\nspec: {{}}\n"
            for name in names
        )
    )

    def versions() -> dict[str, str]:
        items = kubectl.get("configmaps", "-n", namespace)["items"]
        return {c["metadata"]["name"]: (c.get("data") or {}).get("version", "") for c in items}

    def ready_count() -> int:
        items = kubectl.get("gated", "-n", namespace)["items"]
        return sum(1 for o in items if (condition(o, "Ready") or {}).get("status") == "True")

    wait_for(lambda: ready_count() == 12, what="12 instances Ready on version 1")

    def mark_ready(*which: str) -> None:
        for name in which:
            kubectl.run(
                "patch", "configmap", name, "-n", namespace, "--type=merge",
                "-p", '{"data":{"ready":"true"}}',
            )  # fmt: skip

    def waves() -> list[dict[str, Any]]:
        rollout = (kubectl.get("transform", "gated").get("status") or {}).get("rollout") or {}
        found: list[dict[str, Any]] = rollout.get("waves") or []
        return found

    offset = fault_operator.log_size()
    kubectl.apply(inline_transform("gated", gated_module("2"), settings))
    wait_for(
        lambda: [v for n, v in sorted(versions().items()) if v == "2"] == ["2", "2"],
        what="the canary on version 2",
    )
    assert {n for n, v in versions().items() if v == "2"} == {"g00", "g01"}
    mark_ready("g00", "g01")
    wait_for(
        lambda: sum(1 for v in versions().values() if v == "2") == 7, what="wave 1 on version 2"
    )
    before = waves()
    assert [len(w["instances"]) for w in before] == [2, 5]
    fault_operator.kill()
    # While it is down, the second wave becomes Ready, and so will the last one.
    mark_ready(*names[2:])
    assert sum(1 for v in versions().values() if v == "2") == 7
    fault_operator.start("--log-format=json")

    def complete() -> dict[str, Any] | None:
        status = kubectl.get("transform", "gated").get("status") or {}
        rollout: dict[str, Any] = status.get("rollout") or {}
        return rollout if rollout.get("phase") == "Complete" else None

    final = wait_for(complete, within=120, what="the rollout Complete after the restart")
    assert [w["instances"] for w in final["waves"][:2]] == [w["instances"] for w in before]
    assert [w["startedAt"] for w in final["waves"][:2]] == [w["startedAt"] for w in before]
    assert [len(w["instances"]) for w in final["waves"]] == [2, 5, 5]
    assert set(versions().values()) == {"2"}
    for obj in kubectl.get("gated", "-n", namespace)["items"]:
        revisions = kubectl.get(
            "controllerrevisions",
            "-n",
            namespace,
            "-l",
            f"{INSTANCE_UID_LABEL}={obj['metadata']['uid']}",
        )["items"]
        # Moved once: its version 1 and version 2 graphs, nothing in between.
        assert sorted(r["revision"] for r in revisions) == [1, 2], obj["metadata"]["name"]
    assert not (found_tracebacks := tracebacks(fault_operator, offset)), found_tracebacks[:3]
    kubectl.run("delete", "namespace", namespace, "--wait=false")
    kubectl.run("delete", "transform", "gated", "--wait=false")
