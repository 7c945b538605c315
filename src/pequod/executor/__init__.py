"""Executes ResourceGraphs: apply in dependency order, readiness, inventory, pruning, deletion."""
