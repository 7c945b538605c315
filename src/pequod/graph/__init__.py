"""The rendered graph: nodes (objects with dependencies and readiness rules) and violations."""
