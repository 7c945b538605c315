"""The ``pequod`` command line."""
