"""The operator: the Transform controller, the instance controller and how they are wired."""
