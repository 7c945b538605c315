"""Policies: CUE packages defining ``#Policy``, checked against an instance and its graph."""
