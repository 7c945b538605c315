"""A local Kubernetes control plane built from the pinned toolchain, for tests and the sandbox.

``ControlPlane`` starts etcd and kube-apiserver on free loopback ports, and on request the
workload components (kube-controller-manager, kube-scheduler, kwok with one fake Node), so that
Deployments become Available and garbage collection works, all without containers.
"""

from pequod.controlplane.cluster import ControlPlane, ControlPlaneError

__all__ = ["ControlPlane", "ControlPlaneError"]
