"""Files the sandbox installs: Pequod's manifests and the example Transforms and instances.

Both directories live at the top of the repository and ship inside the package through links,
so a clone and an installed package find the same files."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent
MANIFESTS = PACKAGE / "manifests"
EXAMPLES = PACKAGE / "examples"

INSTALL_DIRECTORIES = ("crds", "rbac", "admission")
"""What ``pequod dev up`` applies from manifests/ (the Deployment is the operator's job to run
in a real cluster; the sandbox runs the operator as a local process)."""

TRANSFORMS = EXAMPLES / "transforms.yaml"
INSTANCES = (EXAMPLES / "webservice.yaml", EXAMPLES / "database.yaml")
