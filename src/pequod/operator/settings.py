"""The operator's settings, in sections (the API client, the controllers, renders, applies,
modules, serving, leader election). Each setting states its default once, here, with its
command-line flag and help text beside it: ``pequod run`` builds its flags from these fields,
and everything the operator builds takes its values from a settings object."""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pequod.api.names import OPERATOR_NAMESPACE
from pequod.cue.runner import DEFAULT_TIMEOUT_SECONDS
from pequod.delivery.cache import DEFAULT_MAX_BYTES
from pequod.delivery.fetcher import FetchSettings
from pequod.graph.size import DEFAULT_MAX_GRAPH_BYTES
from pequod.render.evaluate import DEFAULT_MAX_BATCH

# The offline engine's own defaults, which the operator's flags start from (stated there once).
_FETCH = FetchSettings()

T = TypeVar("T")

_NAMESPACE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def namespace_list(value: str) -> tuple[str, ...]:
    """``ns1,ns2`` → ("ns1", "ns2"); each a namespace name or ``*``."""
    names = tuple(n.strip() for n in value.split(",") if n.strip())
    for name in names:
        if name != "*" and not (len(name) <= 63 and _NAMESPACE.match(name)):
            raise argparse.ArgumentTypeError(f"{name!r} is not a namespace name (nor '*')")
    return names


def setting(
    default: T,
    flag: str,
    help: str | None = None,
    *,
    parse: Callable[[str], Any] | None = None,
    metavar: str | None = None,
) -> T:
    """A settings field: its default, and the flag (with its help) that sets it. ``parse``
    turns the flag's text into the value (by default the type of ``default``)."""
    metadata = {"flag": flag, "help": help, "parse": parse, "metavar": metavar}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class ClientSettings:
    kubeconfig: str | None = setting(
        None, "--kubeconfig", "default: in-cluster, else $KUBECONFIG/~/.kube/config"
    )
    context: str | None = setting(None, "--context")
    qps: float = setting(
        0.0,
        "--kube-api-qps",
        "client-side limit on API requests per second (0: none, the API server's "
        "priority and fairness decides)",
    )
    burst: int = setting(100, "--kube-api-burst", "requests allowed at once above the QPS")


@dataclass(frozen=True)
class ControllerSettings:
    instance_concurrency: int = setting(16, "--concurrency", "instances reconciled at once")
    graph_concurrency: int = setting(16, "--graph-concurrency", "ResourceGraphs executed at once")
    resync_period: float = setting(600.0, "--resync-period", "seconds (0: never)")
    revision_history_limit: int = setting(
        10, "--revision-history-limit", "revisions (ControllerRevisions) kept per instance"
    )

    @property
    def resync(self) -> float | None:
        """The informers' resync period; None: never."""
        return self.resync_period or None


@dataclass(frozen=True)
class RenderSettings:
    cue_timeout: float = setting(DEFAULT_TIMEOUT_SECONDS, "--cue-timeout")
    batch_size: int = setting(
        DEFAULT_MAX_BATCH,
        "--render-batch-size",
        "most instances of one module evaluated by one cue process (1: one per render)",
    )
    max_graph_bytes: int = setting(
        DEFAULT_MAX_GRAPH_BYTES,
        "--max-graph-bytes",
        "largest ResourceGraph an instance may render, in bytes; keep it below etcd's "
        f"--max-request-bytes (default {DEFAULT_MAX_GRAPH_BYTES}, etcd's default is 1572864)",
    )
    cache_entries: int = 256
    """Renders kept by render hash (no flag)."""


@dataclass(frozen=True)
class ApplySettings:
    concurrency: int = setting(8, "--apply-concurrency", "objects applied at once")
    ready_timeout: float = setting(600.0, "--ready-timeout", "seconds a node may take to be Ready")


@dataclass(frozen=True)
class ModuleSettings:
    cache_dir: str | None = setting(
        None,
        "--module-cache-dir",
        "the module cache's root: OCI and Git modules, inline and ConfigMap module files, "
        "cue's answers about #Input ($PEQUOD_MODULE_CACHE)",
    )
    cache_mib: int = setting(
        DEFAULT_MAX_BYTES // (1024 * 1024),
        "--module-cache-size",
        "MiB of cached modules (LRU beyond)",
    )
    resolve_ttl: float = setting(
        _FETCH.resolve_ttl, "--module-resolve-ttl", "seconds a tag or branch resolution is trusted"
    )
    fetch_timeout: float = setting(
        _FETCH.timeout, "--module-fetch-timeout", "seconds per registry/git call"
    )
    source_namespaces: tuple[str, ...] = setting(
        (),
        "--module-source-namespaces",
        "namespaces besides the operator's own whose ConfigMaps may be module sources "
        "('*': any); whoever may edit such a ConfigMap decides what the operator applies",
        parse=namespace_list,
        metavar="NS[,NS...]",
    )
    operator_namespace: str | None = None
    """Where the operator runs (no flag); unset: $POD_NAMESPACE, else the service account's
    namespace in a pod, else pequod-system."""

    @property
    def cache_bytes(self) -> int:
        return self.cache_mib * 1024 * 1024


@dataclass(frozen=True)
class ServingSettings:
    metrics_bind_address: str = setting(
        ":8080", "--metrics-bind-address", "[host]:port serving /metrics (0: off)"
    )
    health_probe_bind_address: str = setting(
        ":8081",
        "--health-probe-bind-address",
        "[host]:port serving /healthz and /readyz (0: off)",
    )


@dataclass(frozen=True)
class LeaderElectionSettings:
    enabled: bool = setting(
        False,
        "--leader-elect",
        "run as one of several replicas: only the holder of a Lease works",
    )
    namespace: str = setting(OPERATOR_NAMESPACE, "--leader-election-namespace")
    lease_name: str = setting("pequod-operator", "--leader-election-id", "the Lease's name")
    lease_duration: float = setting(
        15.0,
        "--leader-election-lease-duration",
        "seconds a standby waits after the last renewal",
    )
    renew_deadline: float = setting(10.0, "--leader-election-renew-deadline")
    retry_period: float = setting(2.0, "--leader-election-retry-period")


@dataclass(frozen=True)
class OperatorSettings:
    client: ClientSettings = field(default_factory=ClientSettings)
    controllers: ControllerSettings = field(default_factory=ControllerSettings)
    render: RenderSettings = field(default_factory=RenderSettings)
    apply: ApplySettings = field(default_factory=ApplySettings)
    modules: ModuleSettings = field(default_factory=ModuleSettings)
    serving: ServingSettings = field(default_factory=ServingSettings)
    leader_election: LeaderElectionSettings = field(default_factory=LeaderElectionSettings)


@dataclass(frozen=True)
class SettingFlag:
    """One settings field that a flag sets: where it lives and how the flag reads."""

    section: str
    name: str
    flag: str
    default: Any
    help: str | None
    parse: Callable[[str], Any] | None
    metavar: str | None

    @property
    def dest(self) -> str:
        return f"{self.section}.{self.name}"


def setting_flags() -> Iterator[SettingFlag]:
    """Every settings field that has a flag, section by section."""
    defaults = OperatorSettings()
    for section in dataclasses.fields(defaults):
        for item in dataclasses.fields(getattr(defaults, section.name)):
            if "flag" not in item.metadata:
                continue
            yield SettingFlag(
                section.name,
                item.name,
                item.metadata["flag"],
                item.default,
                item.metadata["help"],
                item.metadata["parse"],
                item.metadata["metavar"],
            )


def settings_from(values: dict[str, Any]) -> OperatorSettings:
    """Settings from ``{"section.field": value}`` (what :func:`setting_flags` names); the
    fields not given keep their defaults."""
    sections: dict[str, dict[str, Any]] = {}
    for dest, value in values.items():
        section, _, name = dest.partition(".")
        sections.setdefault(section, {})[name] = value
    defaults = OperatorSettings()
    return OperatorSettings(
        **{
            section.name: type(getattr(defaults, section.name))(**sections.get(section.name, {}))
            for section in dataclasses.fields(defaults)
        }
    )
