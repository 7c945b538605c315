"""The quick-start demo: the example WebService and Database on the sandbox, until Ready."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from pequod.sandbox.files import INSTANCES
from pequod.sandbox.kubectl import KubectlError, kubectl
from pequod.sandbox.progress import Progress
from pequod.sandbox.state import SandboxRecord, SandboxState
from pequod.sandbox.supervisor import usage

CREATED_KINDS = "deployments,services,ingresses,poddisruptionbudgets,statefulsets,pvc,secrets"


def run_demo(state: SandboxState, record: SandboxRecord, *, timeout: float) -> int:
    progress = Progress()
    config = Path(record.kubeconfig)
    with progress.step("instances: examples/webservice.yaml, examples/database.yaml"):
        for path in INSTANCES:
            progress.line(f"  {kubectl(config, 'apply', '-f', str(path)).strip()}")
    progress.line("waiting until every instance is Ready (the DAG applies in dependency order)")
    deadline = time.monotonic() + timeout
    pending: list[str] = []
    while time.monotonic() < deadline:
        pending = _not_ready(config)
        if not pending:
            break
        time.sleep(1.0)
    print()
    print(f"$ kubectl get ws,db -n default\n{kubectl(config, 'get', 'ws,db', '-n', 'default')}")
    print(
        "$ kubectl get "
        f"{CREATED_KINDS} -n default -l app.kubernetes.io/managed-by=pequod\n"
        + kubectl(
            config,
            "get",
            CREATED_KINDS,
            "-n",
            "default",
            "-l",
            "app.kubernetes.io/managed-by=pequod",
        )
    )
    if pending:
        print(
            f"pequod dev demo: not Ready after {timeout:.0f} s: {', '.join(pending)} "
            f"(operator log: {record.operator_log})",
            file=sys.stderr,
        )
        return 1
    progress.line("every instance is Ready")
    print(usage(state, record))
    return 0


def _not_ready(kubeconfig: Path) -> list[str]:
    try:
        listing = json.loads(kubectl(kubeconfig, "get", "ws,db", "-n", "default", "-o", "json"))
    except (KubectlError, json.JSONDecodeError) as error:
        return [f"({error})"]
    pending = []
    for item in listing.get("items", []):
        conditions = {c["type"]: c for c in item.get("status", {}).get("conditions") or []}
        if conditions.get("Ready", {}).get("status") != "True":
            pending.append(f"{item['kind']}/{item['metadata']['name']}")
    return pending if listing.get("items") else ["(no instances yet)"]
