"""``pequod rollout status|pause|resume|undo transform/NAME``, ``pequod history KIND/NAME``
and ``pequod rollback KIND/NAME [--to N]``: a Transform's rollout and an instance's
revisions, read and asked for through the API server (the controllers do the work: a pause is
``spec.rollout.paused``, an undo puts back the ``cueRef`` the rollout started from, a rollback
is the annotation ``pequod.io/rollback-to``).

Exit codes: 0 done (a rollout Complete, an instance Ready on the revision), 1 a rollout Failed
or RolledBack, or a timeout, 2 a bad argument or an object not found."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from typing import Any

from pequod.api.names import ROLLBACK_ANNOTATION
from pequod.api.resources import TRANSFORMS
from pequod.api.revisions import RevisionEntry
from pequod.api.rollout import COMPLETE, FAILED, PAUSED, ROLLED_BACK, RolloutState
from pequod.kube.client import ApiError, KubeClient
from pequod.kube.resources import ResourceType
from pequod.operator.revisions import RevisionStore

JSON_PATCH = "application/json-patch+json"
POLL_SECONDS = 1.0


class CommandError(Exception):
    """A bad argument or a missing object: exit code 2, the message on stderr."""


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rollout = commands.add_parser("rollout", help="a Transform's rollout of a module version")
    verbs = rollout.add_subparsers(dest="verb", metavar="VERB", required=True)
    for verb, text in (
        ("status", "print the rollout; wait until it ends unless --no-wait"),
        ("pause", "start no new wave (spec.rollout.paused: true)"),
        ("resume", "start waves again (spec.rollout.paused: false)"),
        ("undo", "serve the module version the rollout started from again, to every instance"),
    ):
        parser = verbs.add_parser(verb, help=text)
        parser.add_argument("transform", metavar="transform/NAME")
        _connection(parser)
        if verb == "status":
            parser.add_argument("--no-wait", dest="wait", action="store_false")
            parser.add_argument("--timeout", type=float, default=600.0, help="seconds")
        parser.set_defaults(run=_run(_rollout_verb))
    history = commands.add_parser("history", help="an instance's revisions")
    history.add_argument("instance", metavar="KIND/NAME")
    _connection(history)
    history.set_defaults(run=_run(_history))
    rollback = commands.add_parser("rollback", help="put an instance back to one of its revisions")
    rollback.add_argument("instance", metavar="KIND/NAME")
    rollback.add_argument("--to", type=int, help="the revision (default: the one before)")
    rollback.add_argument("--timeout", type=float, default=300.0, help="seconds to wait")
    _connection(rollback)
    rollback.set_defaults(run=_run(_rollback))


def _connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", help="the kubeconfig (default: as kubectl finds it)")
    parser.add_argument("--context", help="the kubeconfig context")
    parser.add_argument("-n", "--namespace", default="default", help="the instance's namespace")


def _run(command: Any) -> Any:
    def run(arguments: argparse.Namespace) -> int:
        try:
            return int(asyncio.run(_connected(command, arguments)))
        except CommandError as error:
            print(f"pequod {arguments.command}: {error}", file=sys.stderr)
            return 2
        except ApiError as error:
            print(f"pequod {arguments.command}: {error}", file=sys.stderr)
            return 1

    return run


async def _connected(command: Any, arguments: argparse.Namespace) -> int:
    client = await KubeClient.from_kubeconfig(arguments.kubeconfig, arguments.context)
    try:
        result: int = await command(client, arguments)
        return result
    finally:
        await client.close()


# -- rollout ---------------------------------------------------------------------------------


def _transform_name(text: str) -> str:
    kind, _, name = text.rpartition("/")
    if kind not in ("transform", "transforms", "tf", "") or not name:
        raise CommandError(f"expected transform/NAME, not {text!r}")
    return name


async def _transform(client: KubeClient, name: str) -> dict[str, Any]:
    transform = await client.get(TRANSFORMS, name)
    if transform is None:
        raise CommandError(f"Transform {name} not found")
    return transform


async def _rollout_verb(client: KubeClient, arguments: argparse.Namespace) -> int:
    name = _transform_name(arguments.transform)
    transform = await _transform(client, name)
    if arguments.verb == "status":
        return await _status(client, name, arguments.wait, arguments.timeout)
    if arguments.verb in ("pause", "resume"):
        paused = arguments.verb == "pause"
        await client.merge_patch(TRANSFORMS, name, None, {"spec": {"rollout": {"paused": paused}}})
        print(f"transform/{name} rollout {'paused' if paused else 'resumed'}")
        return 0
    state = RolloutState.from_status((transform.get("status") or {}).get("rollout"))
    if state is None or not state.previous.cue_ref:
        raise CommandError(f"Transform {name} has no rollout to undo")
    if state.phase == COMPLETE:
        raise CommandError(f"the rollout of Transform {name} is complete: nothing to undo")
    await client.request(
        "patch",
        "PATCH",
        TRANSFORMS.object_path(name, None),
        body=[{"op": "replace", "path": "/spec/cueRef", "value": dict(state.previous.cue_ref)}],
        content_type=JSON_PATCH,
    )
    print(f"transform/{name} back on {state.previous.ref}")
    return 0


def describe(state: RolloutState) -> str:
    """The rollout in a few lines, as ``pequod rollout status`` prints it."""
    wave = state.waves[-1].number if state.waves else "-"
    lines = [
        f"{state.phase}: {state.message}",
        f"  target   {state.target.ref} ({state.target.digest[:19]})",
        f"  previous {state.previous.ref} ({state.previous.digest[:19]})",
        f"  wave {wave}; instances updated {state.updated}, ready {state.ready}",
    ]
    for failed in state.failed:
        lines.append(f"  failed {failed.instance}: {failed.reason}: {failed.message}")
    return "\n".join(lines)


async def _status(client: KubeClient, name: str, wait: bool, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    shown = ""
    while True:
        transform = await _transform(client, name)
        state = RolloutState.from_status((transform.get("status") or {}).get("rollout"))
        if state is None:
            print(f"transform/{name}: no rollout (every instance is on the served version)")
            return 0
        text = describe(state)
        if text != shown:
            print(text, flush=True)
            shown = text
        if state.phase == COMPLETE:
            return 0
        if state.phase in (FAILED, ROLLED_BACK):
            return 1
        if not wait or state.phase == PAUSED:
            return 0
        if time.monotonic() > deadline:
            print(f"timed out after {seconds:.0f} s", file=sys.stderr)
            return 1
        await asyncio.sleep(POLL_SECONDS)


# -- history and rollback --------------------------------------------------------------------


@dataclass(frozen=True)
class ServedInstance:
    resource_type: ResourceType
    object: dict[str, Any]


async def _instance(client: KubeClient, text: str, namespace: str) -> ServedInstance:
    """``KIND/NAME``: the kind as a Transform serves it (kind, plural, a short name or the
    Transform's name, any case)."""
    kind, _, name = text.partition("/")
    if not kind or not name:
        raise CommandError(f"expected KIND/NAME, not {text!r}")
    wanted = kind.lower()
    for transform in (await client.list(TRANSFORMS)).get("items") or ():
        generated = (transform.get("status") or {}).get("generatedCRD") or {}
        if not generated.get("name"):
            continue
        plural = generated["name"].split(".", 1)[0]
        names = {
            generated.get("kind", "").lower(),
            plural,
            transform["metadata"]["name"],
            *(s.lower() for s in transform["spec"].get("shortNames") or ()),
        }
        if wanted in names:
            group, _, version = generated["apiVersion"].rpartition("/")
            resource_type = ResourceType(group, version, generated["kind"], plural, True)
            obj = await client.get(resource_type, name, namespace)
            if obj is None:
                raise CommandError(f"{generated['kind']} {namespace}/{name} not found")
            return ServedInstance(resource_type, obj)
    raise CommandError(f"no Transform serves the kind {kind!r}")


async def _history(client: KubeClient, arguments: argparse.Namespace) -> int:
    served = await _instance(client, arguments.instance, arguments.namespace)
    metadata = served.object["metadata"]
    current = ((served.object.get("status") or {}).get("revision") or {}).get("number")
    revisions = await RevisionStore(client).history(metadata["namespace"], metadata["uid"])
    print(format_history(revisions, current))
    return 0


def format_history(revisions: list[RevisionEntry], current: int | None) -> str:
    rows = [("REVISION", "MODULE", "DIGEST", "RENDER HASH", "APPLIED", "OUTCOME")]
    for r in revisions:
        rows.append(
            (
                f"{r.number}{'*' if r.number == current else ''}",
                r.module_ref,
                r.module_digest.removeprefix("sha256:")[:12],
                r.render_hash.removeprefix("sha256:")[:12],
                r.applied_at,
                r.outcome + (f" {r.ready_at}" if r.ready_at else ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


async def _rollback(client: KubeClient, arguments: argparse.Namespace) -> int:
    served = await _instance(client, arguments.instance, arguments.namespace)
    metadata = served.object["metadata"]
    status = served.object.get("status") or {}
    current = (status.get("revision") or {}).get("number")
    revisions = await RevisionStore(client).history(metadata["namespace"], metadata["uid"])
    numbers = [r.number for r in revisions]
    listed = ", ".join(str(n) for n in numbers) or "none"
    if arguments.to is not None:
        target = arguments.to
        if target not in numbers:
            raise CommandError(f"there is no revision {target} (revisions: {listed})")
    else:
        earlier = [n for n in numbers if current is None or n < current]
        if not earlier:
            raise CommandError(f"no revision before {current} (revisions: {listed})")
        target = max(earlier)
    revision = next(r for r in revisions if r.number == target)
    await client.merge_patch(
        served.resource_type,
        metadata["name"],
        metadata["namespace"],
        {"metadata": {"annotations": {ROLLBACK_ANNOTATION: str(target)}}},
    )
    print(f"{arguments.instance}: rolling back to revision {target} ({revision.module_ref})")
    deadline = time.monotonic() + arguments.timeout
    shown = ""
    while time.monotonic() < deadline:
        obj = await client.get(served.resource_type, metadata["name"], metadata["namespace"])
        status = (obj or {}).get("status") or {}
        progress = _progress(status)
        if progress != shown:
            print(f"  {progress}", flush=True)
            shown = progress
        rolled = status.get("rolledBackTo") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in status.get("conditions") or ()
        )
        if (
            rolled.get("revision") == target
            and status.get("renderHash") == revision.render_hash
            and ready
        ):
            print(f"{arguments.instance}: Ready on revision {target}")
            return 0
        await asyncio.sleep(POLL_SECONDS)
    print(f"timed out after {arguments.timeout:.0f} s", file=sys.stderr)
    return 1


def _progress(status: dict[str, Any]) -> str:
    """An instance's progress as its status says it: phase, nodes Ready, revision."""
    revision = (status.get("revision") or {}).get("number", "-")
    return (
        f"{status.get('phase') or 'Pending'}: {status.get('readyNodes', 0)}/"
        f"{status.get('totalNodes', 0)} nodes Ready, revision {revision}"
    )
