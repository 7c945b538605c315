"""What a render reads of the world: declarations are checked (Secret data refused), observed
documents hold exactly the declared paths with pending values where not known, and a pending
value anywhere in a node makes it wait."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pequod.cli.main import main
from pequod.render.instance import Instance, render_hash
from pequod.render.observe import (
    Declaration,
    ObserveError,
    Reference,
    observed_document,
    parse_declaration,
    pending,
    pending_paths,
    read_paths,
    without_pending,
)

SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "managedFields": [{"manager": "x"}], "uid": "u"},
    "spec": {"clusterIP": "10.0.0.7", "ports": [{"port": 80}]},
    "status": {"loadBalancer": {}},
}


def test_a_declaration_is_parsed_with_the_instance_namespace_as_default() -> None:
    declaration = parse_declaration(
        {
            "input": {"spec": {}},
            "nodes": {"service": ["spec.clusterIP", "spec.clusterIP"]},
            "references": {
                "db": {"apiVersion": "v1", "kind": "ConfigMap", "name": "orders", "paths": ["data"]}
            },
        },
        "apps",
    )
    assert declaration.node_paths() == {"service": ("spec.clusterIP",)}
    assert declaration.references == (
        Reference("db", "v1", "ConfigMap", "orders", "apps", ("data",)),
    )
    assert Declaration.from_dict(declaration.to_dict()) == declaration


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"nodes": {"Bad_Id": ["a"]}}, "a node id is a DNS label"),
        ({"nodes": {"s": []}}, "a non-empty list of paths"),
        ({"nodes": {"s": ["spec..x"]}}, "is not a path"),
        ({"references": {"r": {"kind": "ConfigMap", "name": "x", "paths": ["a"]}}}, "apiVersion"),
        (
            {
                "references": {
                    "r": {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "name": "x",
                        "paths": ["data.password"],
                    }
                }
            },
            "Secret's data",
        ),
        (
            {
                "references": {
                    "r": {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "name": "x",
                        "paths": ["stringData"],
                    }
                }
            },
            "Secret's data",
        ),
    ],
)
def test_a_bad_declaration_is_refused(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ObserveError, match=message):
        parse_declaration(raw, "apps")


@pytest.mark.parametrize("path", ["metadata", "metadata.annotations", "immutable"])
def test_a_secret_is_never_read_beyond_its_identity(path: str) -> None:
    raw = {
        "references": {"r": {"apiVersion": "v1", "kind": "Secret", "name": "x", "paths": [path]}}
    }
    with pytest.raises(ObserveError, match="Secret's data or annotations"):
        parse_declaration(raw, "apps")


def test_a_secret_may_be_read_for_its_name() -> None:
    declaration = parse_declaration(
        {
            "references": {
                "r": {"apiVersion": "v1", "kind": "Secret", "name": "x", "paths": ["metadata.name"]}
            }
        },
        "apps",
    )
    assert declaration.references[0].paths == ("metadata.name",)


def test_only_the_declared_paths_are_read_never_managed_fields() -> None:
    assert read_paths(SERVICE, ("spec.clusterIP", "status.loadBalancer.ingress")) == {
        "spec": {"clusterIP": "10.0.0.7"}
    }
    metadata = read_paths(SERVICE, ("metadata",))["metadata"]
    assert "managedFields" not in metadata
    assert "managedFields" in SERVICE["metadata"]  # the cache's object is not changed
    assert read_paths(SERVICE, ("metadata.managedFields",)) == {}


def test_the_observed_document_is_pending_where_a_value_is_not_known() -> None:
    declaration = Declaration(
        nodes=(("service", ("spec.clusterIP", "status.loadBalancer.ingress")),),
        references=(Reference("db", "v1", "ConfigMap", "orders", "apps", ("data.url",)),),
    )
    document = observed_document(declaration, {"service": SERVICE}, {})
    assert document == {
        "nodes": {
            "service": {
                "spec": {"clusterIP": "10.0.0.7"},
                "status": {
                    "loadBalancer": {
                        "ingress": pending("nodes.service.status.loadBalancer.ingress")
                    }
                },
            }
        },
        "references": {"db": {"data": {"url": pending("references.db.data.url")}}},
    }


def test_pending_values_are_found_whole_and_in_interpolations() -> None:
    obj = {
        "data": {
            "a": pending("nodes.service.spec.clusterIP"),
            "b": f"http://{pending('references.db.status.endpoint')}/x",
        },
        "list": [1, {"c": "plain"}],
    }
    assert pending_paths(obj) == [
        "nodes.service.spec.clusterIP",
        "references.db.status.endpoint",
    ]
    assert pending_paths({"data": {"a": "(pending: something else)"}}) == []


def test_status_fields_holding_pending_values_are_left_out() -> None:
    status = {"url": "http://x", "endpoint": pending("references.db.status.endpoint"), "n": 1}
    assert without_pending(status) == {"url": "http://x", "n": 1}


def test_the_render_hash_covers_the_observed_values_and_only_them() -> None:
    instance = Instance("web", "apps", {"port": 80})
    plain = render_hash("sha256:m", instance)
    assert render_hash("sha256:m", instance, (), None) == plain  # what graphs hold today
    one = render_hash("sha256:m", instance, (), {"nodes": {"s": {"spec": {"clusterIP": "a"}}}})
    two = render_hash("sha256:m", instance, (), {"nodes": {"s": {"spec": {"clusterIP": "b"}}}})
    assert len({plain, one, two}) == 3


OBSERVING_MODULE = """\
package observing

#Input: {}
#Observe: {
	input: _
	nodes: service: NODE_PATHS
}
#Render: {
	input: _
	observed: _
	output: nodes: [{
		id: "service"
		object: {apiVersion: "v1", kind: "Service", metadata: name: "s"}
	}, {
		id: "copy"
		object: {
			apiVersion: "v1", kind: "ConfigMap", metadata: name: "c"
			data: ip: observed.nodes.service.spec.clusterIP
		}
	}]
}
"""


def _module(tmp_path: Path, node_paths: str) -> Path:
    (tmp_path / "module.cue").write_text(OBSERVING_MODULE.replace("NODE_PATHS", node_paths))
    return tmp_path


def test_vet_refuses_an_observe_of_the_wrong_shape_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["vet", str(_module(tmp_path, '"spec.clusterIP"'))]) == 1
    error = capsys.readouterr().err
    assert "#Observe is not what docs/module-contract.md describes" in error
    assert "module.cue:6:" in error


def test_render_offline_waits_for_what_it_does_not_know_and_uses_what_it_is_given(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    module = str(_module(tmp_path, '["spec.clusterIP"]'))
    (tmp_path / "instance.yaml").write_text("metadata: {name: x, namespace: apps}\nspec: {}\n")
    assert main(["render", module, "--input", str(tmp_path / "instance.yaml")]) == 0
    nodes = {n["id"]: n for n in yaml.safe_load(capsys.readouterr().out)["nodes"]}
    assert nodes["copy"]["waitingFor"] == ["nodes.service.spec.clusterIP"]
    assert "waitingFor" not in nodes["service"]

    (tmp_path / "observed.yaml").write_text("nodes: {service: {spec: {clusterIP: 10.1.2.3}}}\n")
    arguments = ["--input", str(tmp_path / "instance.yaml"), "--observed"]
    assert main(["render", module, *arguments, str(tmp_path / "observed.yaml")]) == 0
    nodes = {n["id"]: n for n in yaml.safe_load(capsys.readouterr().out)["nodes"]}
    assert nodes["copy"]["object"]["data"] == {"ip": "10.1.2.3"}
    assert "waitingFor" not in nodes["copy"]
