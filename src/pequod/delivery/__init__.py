"""Module delivery: one module reference and one resolver for every source type (embedded, a
local directory, inline, ConfigMap, OCI, Git), used by the command line and the operator alike;
the fetchers of OCI artifacts and Git commits with their tag and branch resolution; and the one
content-addressed, size-bounded cache they all fill."""
