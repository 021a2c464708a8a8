"""A test Kubernetes cluster (tests/kubeapi) and a KubernetesPool on it, for adapter tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from scheduler.config import KubernetesPoolConfig, parse_config
from tests.kubeapi import FakeCluster

NAMESPACE = "ml"
PRODUCT = "nvidia.com/gpu.product"  # the label NVIDIA's GPU feature discovery sets
A100 = "NVIDIA-A100-SXM4-80GB"
NET_LABEL = "sfed.io/net"  # a feature label: its value is a node feature


@contextmanager
def pool_cluster(root: Path) -> Iterator[FakeCluster]:
    """A started cluster in `root` for pools on the nodes labelled pool=a100: a1 and a2 with
    4 GPUs (product label NVIDIA-A100-SXM4-80GB, a2 also NET_LABEL=ib), a3 alike but cordoned,
    a4 alike but tainted, and `other` (8 GPUs) outside the selector; namespace NAMESPACE with
    the PVC `ckpt` (the directory root/pv-ckpt)."""
    with FakeCluster(root) as c:
        c.add_namespace(NAMESPACE)
        c.add_node("a1", gpus=4, cpus=16, labels={"pool": "a100", PRODUCT: A100})
        c.add_node("a2", gpus=4, cpus=16, labels={"pool": "a100", PRODUCT: A100, NET_LABEL: "ib"})
        c.add_node("a3", gpus=4, cpus=16, labels={"pool": "a100"}, unschedulable=True)
        c.add_node("other", gpus=8, labels={"pool": "t4"})
        taint = {"key": "dedicated", "value": "infer", "effect": "NoSchedule"}
        c.add_node("a4", gpus=4, cpus=16, labels={"pool": "a100"}, taints=[taint])
        (root / "pv-ckpt").mkdir()
        c.add_pvc(NAMESPACE, "ckpt", root / "pv-ckpt")
        yield c


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeCluster]:
    """Two 4-GPU nodes in the pool, one cordoned, one outside the selector, one tainted."""
    with pool_cluster(tmp_path_factory.mktemp("kube")) as c:
        yield c


def pool_config(cluster: FakeCluster, **overrides: Any) -> KubernetesPoolConfig:
    data: dict[str, Any] = {
        "name": "kube",
        "kind": "kubernetes",
        "kubeconfig": str(cluster.kubeconfig),
        "namespace": NAMESPACE,
        "node_selector": {"pool": "a100"},
        "image": "python:3.11",
        "path_map": {"/sfed-test/ckpt": {"pvc": "ckpt"}},
    }
    data.update(overrides)
    config = parse_config({"pools": [data]}).pools[0]
    assert isinstance(config, KubernetesPoolConfig)
    return config


@pytest.fixture
def pv_dir(cluster: FakeCluster) -> Path:
    """The local directory behind the PVC `ckpt` (mounted at /sfed-test/ckpt in pods)."""
    return Path(cluster.workdir) / "pv-ckpt"
