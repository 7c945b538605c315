"""Generic Kubernetes plumbing on kubernetes-asyncio, after controller-runtime: the dynamic
client, discovery, informers (sources), the work queue, controllers, the manager that owns the
shared pieces, leader election, and the writes every controller makes (finalizers, status,
conditions, Events). Nothing here knows Pequod's domain."""
