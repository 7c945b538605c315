"""The operator: the Transform, instance and ResourceGraph controllers, the serving of the
kinds Transforms generate, the operator's settings and its wiring (``pequod run``)."""
