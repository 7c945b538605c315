"""Kubernetes plumbing on kubernetes-asyncio: client, discovery, informers, work queue, manager."""
