"""Kubernetes GPU node pools: each federation job runs as an Indexed Job, one pod per node.

The official `kubernetes` client is imported only when a Kubernetes pool is configured
(`pip install 'sfed[kubernetes]'`). Pure parts (names, manifests, capacity, status) import
nothing from it.
"""

from __future__ import annotations

__all__ = ["KubernetesPool"]


def __getattr__(name: str) -> object:
    if name == "KubernetesPool":
        from scheduler.pools.kubernetes.adapter import KubernetesPool

        return KubernetesPool
    raise AttributeError(name)
