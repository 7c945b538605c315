"""Pequod: a Kubernetes operator that turns platform modules written in CUE into Kubernetes APIs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("pequod")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"
