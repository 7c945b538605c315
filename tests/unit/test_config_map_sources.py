"""Which namespaces' ConfigMaps may be module sources: by default the operator's own only."""

from __future__ import annotations

import pytest

from pequod.module.source import ModuleError
from pequod.operator.module_sources import (
    ConfigMapSources,
    ModuleReference,
    ModuleSourceNotAllowed,
)


def _config_map(ref: str) -> ModuleReference:
    return ModuleReference("configmap", ref)


def test_config_map_sources_default_to_the_operator_namespace() -> None:
    sources = ConfigMapSources("pequod-system")
    sources.check(_config_map("pequod-system/webservice"))
    with pytest.raises(ModuleSourceNotAllowed) as refused:
        sources.check(_config_map("team-a/webservice"))
    message = str(refused.value)
    assert "team-a/webservice" in message
    assert "allowed only in namespace pequod-system;" in message
    assert "--module-configmap-namespaces=team-a" in message


def test_config_map_sources_listed_and_any() -> None:
    sources = ConfigMapSources("ops", ("team-a", "team-b"))
    assert sources.namespaces == ("ops", "team-a", "team-b")
    sources.check(_config_map("team-b/m"))
    with pytest.raises(ModuleSourceNotAllowed, match="namespaces ops, team-a, team-b"):
        sources.check(_config_map("team-c/m"))
    ConfigMapSources("ops", ("*",)).check(_config_map("anywhere/m"))


def test_other_sources_are_not_concerned_and_a_bad_ref_is_a_module_error() -> None:
    sources = ConfigMapSources("ops")
    sources.check(ModuleReference("embedded", "webservice@1.1.0"))
    sources.check(ModuleReference("oci", "registry.example/x:1"))
    with pytest.raises(ModuleError) as malformed:
        sources.check(_config_map("no-namespace"))
    assert not isinstance(malformed.value, ModuleSourceNotAllowed)
