"""The pinned external tools (cue, etcd, Kubernetes control-plane binaries, kwok).

`versions.toml` pins them; :mod:`pequod.toolchain.build` builds what is missing from source through
the Go module proxy; :mod:`pequod.toolchain.locate` finds a built binary.
"""
