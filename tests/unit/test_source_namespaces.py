"""Which namespaces' ConfigMaps may be module sources, and whose Secrets pull credentials: by
default the operator's own only."""

from __future__ import annotations

import pytest

from pequod.delivery.reference import ModuleReference
from pequod.delivery.source_namespaces import ModuleSourceNotAllowed, SourceNamespaces
from pequod.module.source import ModuleError


def _config_map(ref: str) -> ModuleReference:
    return ModuleReference("configmap", ref)


def test_source_namespaces_default_to_the_operator_namespace() -> None:
    sources = SourceNamespaces("pequod-system")
    sources.check(_config_map("pequod-system/webservice"))
    with pytest.raises(ModuleSourceNotAllowed) as refused:
        sources.check(_config_map("team-a/webservice"))
    message = str(refused.value)
    assert "team-a/webservice" in message
    assert "allowed only in namespace pequod-system;" in message
    assert "--module-source-namespaces=team-a" in message


def test_source_namespaces_listed_and_any() -> None:
    sources = SourceNamespaces("ops", ("team-a", "team-b"))
    assert sources.namespaces == ("ops", "team-a", "team-b")
    sources.check(_config_map("team-b/m"))
    with pytest.raises(ModuleSourceNotAllowed, match="namespaces ops, team-a, team-b"):
        sources.check(_config_map("team-c/m"))
    SourceNamespaces("ops", ("*",)).check(_config_map("anywhere/m"))


def test_other_sources_are_not_concerned_and_a_bad_ref_is_a_module_error() -> None:
    sources = SourceNamespaces("ops")
    sources.check(ModuleReference("embedded", "webservice@1.1.0"))
    sources.check(ModuleReference("oci", "registry.example/x:1"))
    with pytest.raises(ModuleError) as malformed:
        sources.check(_config_map("no-namespace"))
    assert not isinstance(malformed.value, ModuleSourceNotAllowed)


def test_pull_secrets_follow_the_same_rule() -> None:
    sources = SourceNamespaces("pequod-system", ("platform",))
    for namespace in ("pequod-system", "platform"):
        sources.check(ModuleReference("oci", "r.example/x:1", pull_secret=(namespace, "creds")))
    with pytest.raises(ModuleSourceNotAllowed) as refused:
        sources.check(ModuleReference("git", "https://g.example/m", pull_secret=("team-a", "t")))
    message = str(refused.value)
    assert message.startswith("pull Secret team-a/t:")
    assert "--module-source-namespaces=team-a" in message
    SourceNamespaces("ops", ("*",)).check(
        ModuleReference("git", "https://g.example/m", pull_secret=("anywhere", "t"))
    )
