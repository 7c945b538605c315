"""The resource types of Pequod's own kinds, for the dynamic client and the informers."""

from __future__ import annotations

from pequod.api.names import (
    GROUP,
    RESOURCE_GRAPH_KIND,
    RESOURCE_GRAPH_PLURAL,
    TRANSFORM_KIND,
    TRANSFORM_PLURAL,
    VERSION,
)
from pequod.kube.resources import ResourceType

TRANSFORMS = ResourceType(GROUP, VERSION, TRANSFORM_KIND, TRANSFORM_PLURAL, False)
RESOURCE_GRAPHS = ResourceType(GROUP, VERSION, RESOURCE_GRAPH_KIND, RESOURCE_GRAPH_PLURAL, True)
