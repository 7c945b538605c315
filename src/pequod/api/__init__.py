"""Pequod's vocabulary, in one place: its kinds and their resource types, names, labels,
annotations and finalizers, the ownership marks on what it manages, the typed ResourceGraph
document, and the CRDs of its own kinds."""
