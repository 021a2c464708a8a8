"""A test Kubernetes API server (with job controller, scheduler and kubelet) for the adapter.

Strict like a real apiserver: objects are checked against the Kubernetes 1.37 OpenAPI schemas
and the apiserver's semantic validation; pods run as local processes (see kubelet.py).
"""

from tests.kubeapi.cluster import FakeCluster

__all__ = ["FakeCluster"]
