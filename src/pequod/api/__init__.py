"""Pequod's own API: the Transform and ResourceGraph kinds, their labels, annotations and
finalizers."""
