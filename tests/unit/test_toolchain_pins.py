"""The pin file and the wrapper modules the toolchain build writes from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from pequod.toolchain import build
from pequod.toolchain.locate import (
    ToolNotFoundError,
    find_binary,
    pin_for_binary,
    tool_directory,
    toolchain_root,
)
from pequod.toolchain.pins import ToolPin, load_pins

KUBERNETES_GO_MOD = """module k8s.io/kubernetes

go 1.24.0

godebug default=go1.24

require (
\tgithub.com/spf13/cobra v1.9.1
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
\tk8s.io/kube-openapi v0.0.0-20250710124328-f3f2b991d03b
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
)
"""

ETCD_GO_MOD = """module go.etcd.io/etcd/server/v3

go 1.26.0

require (
\tgo.etcd.io/etcd/api/v3 v3.5.35
\tgo.etcd.io/etcd/client/v2 v2.305.35
)

replace (
\tgo.etcd.io/etcd/api/v3 => ../api
\tgo.etcd.io/etcd/client/v2 => ../client/v2
)

replace (
\tgo.etcd.io/etcd => ./FORBIDDEN_DEPENDENCY
)
"""


def test_every_tool_is_pinned_to_an_exact_version() -> None:
    pins = load_pins()
    assert set(pins) == {"cue", "etcd", "kubernetes", "kwok", "helm"}
    for pin in pins.values():
        assert pin.version.startswith("v")
        assert pin.version.count(".") == 2
    assert pins["etcd"].version.startswith("v3.5.")
    assert pins["kubernetes"].binaries == (
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kubectl",
    )


def test_kubernetes_version_flags_name_the_release() -> None:
    pin = load_pins()["kubernetes"]
    flags = pin.expanded_ldflags()
    assert f"-X k8s.io/component-base/version.gitVersion={pin.version}" in flags
    major, minor = pin.version.lstrip("v").split(".")[:2]
    assert f"-X k8s.io/component-base/version.gitMajor={major}" in flags
    assert f"-X k8s.io/component-base/version.gitMinor={minor}" in flags
    assert pin.staging_version == "v0." + pin.version.split(".", 1)[1]


def test_cache_directory_is_keyed_by_version(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PEQUOD_TOOLCHAIN_DIR", str(tmp_path))
    pin = pin_for_binary("kube-apiserver")
    assert toolchain_root() == tmp_path
    assert tool_directory(pin) == tmp_path / f"kubernetes-{pin.version}"


def test_missing_binary_names_the_command_that_builds_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PEQUOD_TOOLCHAIN_DIR", str(tmp_path))
    monkeypatch.delenv("PEQUOD_ETCD", raising=False)
    with pytest.raises(ToolNotFoundError, match="pequod toolchain build"):
        find_binary("etcd")


def test_environment_overrides_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "my-etcd"
    fake.write_text("")
    monkeypatch.setenv("PEQUOD_ETCD", str(fake))
    assert find_binary("etcd") == fake


def _wrapper_for(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pin: ToolPin, upstream: str
) -> str:
    monkeypatch.setattr(build, "_upstream_go_mod", lambda _pin: upstream)
    build._write_wrapper_module(pin, tmp_path)
    return (tmp_path / "go.mod").read_text()


def test_wrapper_replaces_staging_placeholders_with_published_releases(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pin = load_pins()["kubernetes"]
    go_mod = _wrapper_for(monkeypatch, tmp_path, pin, KUBERNETES_GO_MOD)
    assert f"require k8s.io/kubernetes {pin.version}" in go_mod
    assert f"replace k8s.io/api => k8s.io/api {pin.staging_version}" in go_mod
    assert f"replace k8s.io/client-go => k8s.io/client-go {pin.staging_version}" in go_mod
    assert "kube-openapi" not in go_mod
    assert "go 1.24.0" in go_mod
    assert "godebug default=go1.24" in go_mod


def test_wrapper_keeps_siblings_required_at_real_versions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    go_mod = _wrapper_for(monkeypatch, tmp_path, load_pins()["etcd"], ETCD_GO_MOD)
    assert "replace" not in go_mod
    assert "FORBIDDEN" not in go_mod
