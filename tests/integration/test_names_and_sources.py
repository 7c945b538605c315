"""The names a generated kind is served under, and where ConfigMap modules may come from, against
a real control plane and the operator process: a kind that already reads as a plural keeps it,
``#Metadata.plural`` is honoured and checked, an existing CRD keeps its plural (and is not
renamed), and a ConfigMap outside the allowed namespaces is refused until the flag allows it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pequod.api.names import OPERATOR_NAMESPACE
from tests.integration.test_chart import container, render
from tests.operator_harness import (
    Kubectl,
    OperatorProcess,
    condition,
    failed_transform,
    inline_transform,
    ready_transform,
    transform,
    wait_for,
)

MODULE = """package shapes

#Metadata: {{name: "shapes", version: "0.1.0", kind: "{kind}"{plural}}}

#Input: {{sides: int | *3}}

#Render: {{
	input: {{
		metadata: {{name: string, namespace: string, labels?: {{...}}, annotations?: {{...}}}}
		spec: #Input
	}}
	output: nodes: [{{
		id: "settings"
		object: {{
			apiVersion: "v1"
			kind:       "ConfigMap"
			metadata: name: input.metadata.name
			data: sides: "\\(input.spec.sides)"{extra}
		}}
	}}]
}}
"""


def module(kind: str, plural: str | None = None, extra: str = "") -> str:
    return MODULE.format(kind=kind, plural=f', plural: "{plural}"' if plural else "", extra=extra)


def instance(kind: str, namespace: str, name: str) -> str:
    return (
        f"apiVersion: platform.pequod.io/v1alpha1\nkind: {kind}\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\nspec: {{}}\n"
    )


def crd_names(kubectl: Kubectl) -> set[str]:
    return {item["metadata"]["name"] for item in kubectl.get("crd")["items"]}


def ready_message(kubectl: Kubectl, name: str) -> str:
    found = condition(kubectl.get("transform", name), "Ready")
    assert found is not None
    return str(found["message"])


def delete(kubectl: Kubectl, *objects: tuple[str, ...]) -> None:
    for arguments in objects:
        kubectl.run("delete", *arguments, "--ignore-not-found", "--timeout=60s")


# -- plurals ------------------------------------------------------------------------------


@pytest.mark.cluster
def test_a_kind_that_reads_as_a_plural_keeps_it(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    kubectl.apply(inline_transform("acc-shapes", module("AccShapes")))
    try:
        status = ready_transform(kubectl, "acc-shapes")["status"]
        assert status["generatedCRD"]["name"] == "accshapes.platform.pequod.io"
        crd = kubectl.get("crd", "accshapes.platform.pequod.io")
        names = crd["spec"]["names"]
        assert (names["kind"], names["plural"], names["singular"]) == (
            "AccShapes",
            "accshapes",
            "accshapes",
        )
        assert "accshapeses.platform.pequod.io" not in crd_names(kubectl)
        kubectl.apply(instance("AccShapes", namespace, "triangle"))
        wait_for(
            lambda: kubectl.get("resourcegraph", "accshapes-triangle", "-n", namespace),
            what="the instance rendered",
        )
        listed = kubectl.run("get", "accshapes", "-n", namespace, "-o", "name").stdout
        assert listed.strip() == "accshapes.platform.pequod.io/triangle"
    finally:
        delete(kubectl, ("accshapes", "triangle", "-n", namespace), ("transform", "acc-shapes"))


@pytest.mark.cluster
def test_explicit_plural_is_honoured_then_kept_and_a_rename_refused(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    # An explicit plural, the one an older Pequod derived for this kind.
    kubectl.apply(inline_transform("grid-shapes", module("GridShapes", "gridshapeses")))
    try:
        status = ready_transform(kubectl, "grid-shapes")["status"]
        assert status["generatedCRD"]["name"] == "gridshapeses.platform.pequod.io"
        kubectl.apply(instance("GridShapes", namespace, "square"))
        wait_for(
            lambda: kubectl.get("resourcegraph", "gridshapes-square", "-n", namespace),
            what="the instance rendered",
        )

        # Without #Metadata.plural the kind alone gives "gridshapes": the served CRD keeps
        # its plural, and the new module is served by it.
        kubectl.apply(
            inline_transform("grid-shapes", module("GridShapes", extra='\n\t\t\tdata: v: "2"'))
        )

        def re_rendered() -> Any:
            graph = kubectl.get("resourcegraph", "gridshapes-square", "-n", namespace)
            return graph if graph["spec"]["nodes"][0]["object"]["data"].get("v") == "2" else None

        wait_for(re_rendered, what="the instance rendered with the new module")
        message = ready_message(kubectl, "grid-shapes")
        assert "serving GridShapes (gridshapeses.platform.pequod.io)" in message
        assert "kept from the existing CRD" in message
        assert "would give gridshapes" in message
        assert "gridshapes.platform.pequod.io" not in crd_names(kubectl)

        # An explicit new plural would rename the CRD: refused, nothing created, nothing lost.
        kubectl.apply(inline_transform("grid-shapes", module("GridShapes", "gridsets")))
        refused = failed_transform(kubectl, "grid-shapes", "CRDRenameRefused")
        message = condition(refused, "Ready")["message"]  # type: ignore[index]
        assert "gridsets.platform.pequod.io" in message
        assert "gridshapeses.platform.pequod.io" in message
        assert '#Metadata.plural: "gridshapeses"' in message
        assert "instances keep being served" in message
        assert "gridsets.platform.pequod.io" not in crd_names(kubectl)
        assert kubectl.get("gridshapeses", "square", "-n", namespace) is not None
        assert kubectl.get("resourcegraph", "gridshapes-square", "-n", namespace) is not None
    finally:
        delete(kubectl, ("gridshapeses", "square", "-n", namespace), ("transform", "grid-shapes"))
    wait_for(
        lambda: "gridshapeses.platform.pequod.io" not in crd_names(kubectl), what="CRD deleted"
    )


@pytest.mark.cluster
def test_an_invalid_plural_is_reported_where_it_is_written(
    kubectl: Kubectl, operator: OperatorProcess
) -> None:
    kubectl.apply(inline_transform("bad-plural", module("BadPlural", "Bad_Plurals")))
    try:
        failed = failed_transform(kubectl, "bad-plural", "InvalidModule")
        message = condition(failed, "SchemaValid")["message"]  # type: ignore[index]
        assert "#Metadata.plural is not a valid CRD plural" in message
        assert re.search(r"module\.cue:3:\d+: #Metadata\.plural: 'Bad_Plurals' is not", message)
        assert not any(name.startswith("badplural") for name in crd_names(kubectl))
    finally:
        delete(kubectl, ("transform", "bad-plural"))


def test_vet_names_the_line_of_an_invalid_plural(tmp_path: Path) -> None:
    (tmp_path / "module.cue").write_text(module("BadPlural", "bad.plurals"))
    result = subprocess.run(
        [sys.executable, "-m", "pequod", "vet", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert f"{tmp_path}/module.cue:3:" in result.stderr
    assert "#Metadata.plural: 'bad.plurals' is not a lower-case DNS label" in result.stderr


# -- ConfigMap sources ----------------------------------------------------------------------


def config_map(namespace: str, name: str, source: str) -> str:
    return (
        "apiVersion: v1\nkind: ConfigMap\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\ndata:\n  module.cue: |\n"
        + "\n".join("    " + line for line in source.splitlines())
        + "\n"
    )


@pytest.fixture
def operator_namespace(kubectl: Kubectl) -> str:
    """The namespace the operator runs in (out of a pod: pequod-system), where ConfigMap
    modules are allowed by default."""
    kubectl.run("create", "namespace", OPERATOR_NAMESPACE, check=False)
    return OPERATOR_NAMESPACE


def transform_failures(operator: OperatorProcess, name: str) -> int:
    return sum(
        1
        for line in operator.log().splitlines()
        if "transform failed" in line and f"transform={name} " in line + " "
    )


@pytest.mark.cluster
def test_a_config_map_outside_the_allowed_namespaces_is_refused_until_allowed(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str, operator_namespace: str
) -> None:
    # Served from a ConfigMap in the operator's namespace, with an instance.
    kubectl.apply(config_map(operator_namespace, "tiles-module", module("Tiles")))
    kubectl.apply(
        config_map(namespace, "tiles-module", module("Tiles", extra='\n\t\t\tdata: v: "2"'))
    )
    kubectl.apply(
        transform("tiles", f"{{type: configmap, ref: {operator_namespace}/tiles-module}}")
    )
    try:
        ready_transform(kubectl, "tiles")
        kubectl.apply(instance("Tiles", namespace, "hex"))
        wait_for(
            lambda: kubectl.get("resourcegraph", "tiles-hex", "-n", namespace),
            what="the instance rendered",
        )

        # Pointed at a ConfigMap in the test's namespace: refused, with what to do.
        kubectl.apply(transform("tiles", f"{{type: configmap, ref: {namespace}/tiles-module}}"))
        refused = failed_transform(kubectl, "tiles", "ModuleSourceNotAllowed")
        fetched = condition(refused, "ModuleFetched")
        assert fetched is not None
        assert (fetched["status"], fetched["reason"]) == ("False", "ModuleSourceNotAllowed")
        message = fetched["message"]
        assert f"ConfigMap {namespace}/tiles-module" in message
        assert f"allowed only in namespace {operator_namespace};" in message
        assert f"--module-source-namespaces={namespace}" in message
        # No retry storm: refused, and not again and again (its own status write may bring
        # one more reconcile, which writes nothing).
        failures = transform_failures(operator, "tiles")
        time.sleep(3)
        assert 1 <= transform_failures(operator, "tiles") == failures <= 2, operator.log()[-3000:]
        # The refused ConfigMap is never watched; the served kind and its instance stay.
        assert f"namespace={namespace}" not in "\n".join(
            line for line in operator.log().splitlines() if "watching a module ConfigMap" in line
        )
        assert kubectl.get("crd", "tiles.platform.pequod.io") is not None
        graph = kubectl.get("resourcegraph", "tiles-hex", "-n", namespace)
        assert graph["spec"]["nodes"][0]["object"]["data"] == {"sides": "3"}
        assert kubectl.get("tiles", "hex", "-n", namespace) is not None

        # With the flag, the same reference is served.
        operator.stop()
        operator.start(f"--module-source-namespaces=other,{namespace}")
        ready_transform(kubectl, "tiles")

        def re_rendered() -> Any:
            found = kubectl.get("resourcegraph", "tiles-hex", "-n", namespace)
            return found if found["spec"]["nodes"][0]["object"]["data"].get("v") == "2" else None

        wait_for(re_rendered, what="the instance rendered from the allowed ConfigMap")
        delete(kubectl, ("tiles", "hex", "-n", namespace), ("transform", "tiles"))
    finally:
        delete(
            kubectl,
            ("tiles", "hex", "-n", namespace),
            ("transform", "tiles"),
            ("configmap", "tiles-module", "-n", operator_namespace),
        )
        operator.stop()
        operator.start()


def test_the_chart_passes_the_allowed_namespaces() -> None:
    default = container(render()[("Deployment", "pequod")])["args"]
    assert not any(a.startswith("--module-source-namespaces") for a in default)
    allowed = render("moduleSourceNamespaces={platform,team-a}")
    args = container(allowed[("Deployment", "pequod")])["args"]
    assert "--module-source-namespaces=platform,team-a" in args


@pytest.mark.cluster
def test_a_pull_secret_outside_the_allowed_namespaces_is_refused_unread(
    kubectl: Kubectl, operator: OperatorProcess, namespace: str
) -> None:
    # The Secret exists; its credentials would go to whatever server the Transform names.
    kubectl.run("create", "secret", "generic", "creds", "-n", namespace, "--from-literal=token=t")
    reference = (
        "{type: git, ref: 'https://127.0.0.1:9/modules.git', "
        f"pullSecretRef: {{name: creds, namespace: {namespace}}}}}"
    )
    kubectl.apply(transform("borrowed", reference))
    try:
        refused = failed_transform(kubectl, "borrowed", "ModuleSourceNotAllowed")
        fetched = condition(refused, "ModuleFetched")
        assert fetched is not None
        message = fetched["message"]
        assert message.startswith(f"pull Secret {namespace}/creds:"), message
        assert f"--module-source-namespaces={namespace}" in message
        # Refused before any fetch: nothing was attempted against the server.
        assert "127.0.0.1:9" not in message
    finally:
        delete(kubectl, ("transform", "borrowed"))
