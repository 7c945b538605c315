"""Generates the CRD of a platform API from a module's ``#Input`` schema and metadata."""
