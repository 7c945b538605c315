"""Runs the ``cue`` CLI as a subprocess and turns its errors into structured diagnostics."""
