"""``#Input`` → a Kubernetes structural schema (and a JSON Schema with the same meaning)."""
