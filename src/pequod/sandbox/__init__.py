"""``pequod dev``: a local sandbox (control plane, Pequod's manifests, the operator and the
embedded Transforms) that a newcomer brings up with one command."""
