"""Renders an instance with a module into a checked graph: the one path used by the CLI and the
controllers alike."""
