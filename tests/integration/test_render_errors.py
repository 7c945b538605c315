"""Every bad input gets a clear error in the right place: `pequod render/vet/crd` exit 1 with
the file:line and the field path on stderr, usage errors exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cue_harness import REPOSITORY

BAD = REPOSITORY / "tests" / "bad_modules"


def pequod(*arguments: str, cwd: Path = REPOSITORY) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pequod", *arguments],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.fixture
def empty_input(tmp_path: Path) -> Path:
    path = tmp_path / "instance.yaml"
    path.write_text("metadata: {name: shop, namespace: team-a}\nspec: {}\n")
    return path


def write_instance(tmp_path: Path, spec_lines: str) -> Path:
    path = tmp_path / "shop.yaml"
    path.write_text(
        "apiVersion: platform.pequod.io/v1alpha1\nkind: WebService\n"
        "metadata:\n  name: shop\n  namespace: team-a\nspec:\n" + spec_lines
    )
    return path


@pytest.mark.parametrize(
    ("spec", "line", "expected"),
    [
        (
            "  image: nginx\n  port: 70000\n",
            8,
            "spec.port: invalid value 70000 (out of bound <=65535)",
        ),
        ("  image: 'UPPER CASE'\n", 7, "spec.image: invalid value"),
        ("  image: nginx\n  replicas: -1\n", 8, "spec.replicas: invalid value -1"),
        ("  image: nginx\n  bogus: 1\n", 8, "spec.bogus: field not allowed"),
        (
            "  image: nginx\n  resources:\n    limits: {gpu: '1'}\n",
            9,
            "spec.resources.limits.gpu: field not allowed",
        ),
        ("  port: 80\n", None, "spec.image: a required value is missing"),
    ],
    ids=["bound", "regex", "negative", "unknown-field", "nested-unknown-field", "missing"],
)
def test_invalid_spec_is_reported_at_its_line(
    tmp_path: Path, spec: str, line: int | None, expected: str
) -> None:
    instance = write_instance(tmp_path, spec)
    result = pequod("render", "embedded:webservice@1.0.0", "--input", str(instance))
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert "the spec is not valid for embedded:webservice@1.0.0" in result.stderr
    assert expected in result.stderr
    if line is not None:
        assert f"{instance}:{line}:" in result.stderr
    if "field not allowed" not in expected:
        assert "webservice/v1.0.0/input.cue:" in result.stderr  # where the constraint is


def test_enum_violation_names_the_allowed_values(tmp_path: Path) -> None:
    instance = tmp_path / "db.yaml"
    instance.write_text("metadata: {name: orders, namespace: team-a}\nspec:\n  engine: oracle\n")
    result = pequod("render", "embedded:database", "--input", str(instance))
    assert result.returncode == 1
    assert f"{instance}:3:11: spec.engine: " in result.stderr
    assert '"oracle" is not allowed (allowed: "mysql", "postgres")' in result.stderr


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("syntax_error", "syntax_error/module.cue:5:1: expected operand, found '}'"),
        ("no_render", "the module does not define #Render"),
        ("no_input", "the module does not define #Input"),
        ("cycle", "output.nodes: dependency cycle: a -> c -> b -> a"),
        (
            "unknown_dependency",
            "output.nodes[0].dependsOn[0]: node 'a' depends on 'missing', which is not a node",
        ),
        ("duplicate_ids", "output.nodes[1].id: duplicate node id 'a' (also output.nodes[0])"),
        (
            "other_namespace",
            "output.nodes[0].object.metadata.namespace: ConfigMap 'a' is in namespace "
            "'kube-system', but objects of this instance may only go to 'team-a'",
        ),
        ("cluster_scoped", "does not allow cluster-scoped objects"),
        ("bad_cel", "output.nodes[0].readyWhen[0].expression: invalid CEL"),
        ("huge", "cue produced more than 16777216 bytes of output; refusing it"),
    ],
)
def test_bad_module_fails_with_a_precise_message(
    module: str, expected: str, empty_input: Path
) -> None:
    result = pequod("render", str(BAD / module), "--input", str(empty_input))
    assert result.returncode == 1, result.stdout
    assert result.stdout == ""
    assert expected in result.stderr


def test_render_that_does_not_terminate_is_cut_off(empty_input: Path) -> None:
    result = pequod("render", str(BAD / "slow"), "--input", str(empty_input), "--cue-timeout", "2")
    assert result.returncode == 1
    assert "cue did not finish within 2 s" in result.stderr


def test_allowed_namespace_and_cluster_scope_are_opt_in(empty_input: Path) -> None:
    allowed = pequod(
        "render",
        str(BAD / "other_namespace"),
        "--input",
        str(empty_input),
        "--allow-namespace",
        "kube-system",
    )
    assert allowed.returncode == 0, allowed.stderr
    cluster = pequod(
        "render", str(BAD / "cluster_scoped"), "--input", str(empty_input), "--allow-cluster-scoped"
    )
    assert cluster.returncode == 0, cluster.stderr


def test_module_warning_is_reported_but_does_not_fail(empty_input: Path) -> None:
    result = pequod("render", str(BAD / "module_violation"), "--input", str(empty_input))
    assert result.returncode == 0
    assert "Warning: spec.replicas: one replica has no redundancy" in result.stderr


def test_policy_violation_fails_the_render(tmp_path: Path, empty_input: Path) -> None:
    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "policy.cue").write_text(
        "package policy\n\n#Policy: {\n\tinput: {...}\n\toutput: {...}\n"
        '\tviolations: [for n in output.nodes if n.object.kind == "ConfigMap" '
        '{path: "nodes[\\(n.id)]", message: "no ConfigMaps here"}]\n}\n'
    )
    result = pequod(
        "render",
        str(BAD / "module_violation"),
        "--input",
        str(empty_input),
        "--policy",
        str(policy),
    )
    assert result.returncode == 1
    assert f"Error: nodes[a]: no ConfigMaps here [{policy}]" in result.stderr


def test_vet_reports_reserved_fields_and_missing_definitions() -> None:
    reserved = pequod("vet", str(BAD / "reserved_field"))
    assert reserved.returncode == 1
    assert "#Input may not declare 'platformRef'" in reserved.stderr
    missing = pequod("vet", str(BAD / "no_input"))
    assert missing.returncode == 1
    assert "the module does not define #Input" in missing.stderr


def test_unknown_module_and_version_are_named() -> None:
    unknown = pequod("vet", "embedded:nope")
    assert unknown.returncode == 1
    assert "embedded:nope: no such embedded module (available: " in unknown.stderr
    version = pequod("vet", "embedded:webservice@9.9.9")
    assert version.returncode == 1
    assert "no version 9.9.9 (available: 1.0.0, 1.1.0, 1.2.0)" in version.stderr


def test_usage_errors_exit_2() -> None:
    assert pequod("render", "embedded:webservice").returncode == 2
    assert pequod("render").returncode == 2
    assert pequod("no-such-command").returncode == 2
