"""Which namespaces' ConfigMaps may hold modules and whose Secrets may hold a module's pull
credentials: the operator's settings that refuse a source before anything is read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pequod.module.source import ModuleError

if TYPE_CHECKING:
    from pequod.delivery.reference import ModuleReference

OPERATOR_NAMESPACE = "pequod-system"
"""The operator's namespace unless told otherwise; the same as ``pequod.api.names``' (the
offline engine sits below the API's layer, and a unit test keeps the two equal)."""
ANY_NAMESPACE = "*"


class ModuleSourceNotAllowed(ModuleError):
    """The operator's settings refuse this source (a ConfigMap, or a pull Secret, outside the
    allowed namespaces): nothing is read, and retrying changes nothing until the reference or
    the settings do."""


@dataclass(frozen=True)
class SourceNamespaces:
    """The namespaces whose ConfigMaps may hold modules and whose Secrets may hold a module's
    pull credentials. Whoever may edit such a ConfigMap decides what the operator applies,
    anywhere its rights reach; a Secret the operator may send to a registry or Git server of a
    Transform's choosing is as good as readable by whoever writes Transforms. So by default
    only the operator's own namespace, and others only when ``pequod run
    --module-source-namespaces`` lists them (``*``: any)."""

    operator_namespace: str = OPERATOR_NAMESPACE
    others: tuple[str, ...] = ()

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.operator_namespace, *self.others)))

    def allows(self, namespace: str) -> bool:
        return ANY_NAMESPACE in self.others or namespace in self.namespaces

    def check(self, reference: ModuleReference) -> None:
        """Raises :class:`ModuleSourceNotAllowed` for a ConfigMap or a pull Secret in another
        namespace (and :class:`ModuleError` for a malformed ConfigMap reference)."""
        if reference.type == "configmap":
            namespace, name = reference.configmap_name()
            if not self.allows(namespace):
                raise ModuleSourceNotAllowed(self._refusal("ConfigMap", namespace, name))
        if reference.pull_secret is not None:
            namespace, name = reference.pull_secret
            if not self.allows(namespace):
                raise ModuleSourceNotAllowed(self._refusal("pull Secret", namespace, name))

    def _refusal(self, what: str, namespace: str, name: str) -> str:
        return (
            f"{what} {namespace}/{name}: module ConfigMaps and pull Secrets are allowed only "
            f"in namespace{'s' if len(self.namespaces) > 1 else ''} "
            f"{', '.join(self.namespaces)}; move it to "
            f"{self.operator_namespace}, or allow {namespace} with "
            f"`pequod run --module-source-namespaces={namespace}` (Helm: the value "
            "moduleSourceNamespaces)"
        )
