"""Scheduling: only fitting nodes are used; otherwise the pod stays Pending, Unschedulable."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from tests.kubeapi import FakeCluster
from tests.kubeapi.builders import container, job
from tests.kubeapi.lookups import pods_of


def _gpu_job(name: str, gpus: int, **pod: Any) -> dict[str, Any]:
    body = job(name, "sleep 30", pod=pod)
    body["spec"]["template"]["spec"]["containers"] = [
        container("sleep 30", resources={"limits": {"nvidia.com/gpu": str(gpus)}})
    ]
    return body


def _scheduled(cluster: FakeCluster, name: str) -> dict[str, Any]:
    """The job's pod once the scheduler has decided about it."""
    cluster.wait_for(
        lambda: any(
            c["type"] == "PodScheduled"
            for p in pods_of(cluster, name)
            for c in p["status"].get("conditions") or []
        )
    )
    (pod,) = pods_of(cluster, name)
    return pod


def _unschedulable_message(pod: dict[str, Any]) -> str:
    (cond,) = [c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled"]
    assert (cond["status"], cond["reason"], pod["status"]["phase"]) == (
        "False",
        "Unschedulable",
        "Pending",
    )
    return cond["message"]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"unschedulable": True}, "2 node(s) were unschedulable"),
        ({"ready": False}, "2 node(s) had untolerated taint {node.kubernetes.io/not-ready: }"),
    ],
)
def test_cordoned_or_not_ready_nodes_unused(
    batch: client.BatchV1Api, cluster: FakeCluster, change: dict, reason: str
) -> None:
    """Cordoned and NotReady nodes take no pods."""
    for node in ("node-a", "node-b"):
        cluster.set_node(node, **change)
    batch.create_namespaced_job("default", _gpu_job("p", 1), field_validation="Strict")
    assert _unschedulable_message(_scheduled(cluster, "p")) == f"0/2 nodes are available: {reason}."


def test_tainted_node_unused_without_toleration(
    batch: client.BatchV1Api, cluster: FakeCluster
) -> None:
    """A NoSchedule taint keeps pods off unless tolerated."""
    cluster.set_node("node-a", unschedulable=True)
    cluster.add_node("node-t", taints=[{"key": "gpu", "value": "h100", "effect": "NoSchedule"}])
    cluster.set_node("node-b", ready=False)
    batch.create_namespaced_job("default", _gpu_job("p", 1), field_validation="Strict")
    assert "1 node(s) had untolerated taint {gpu: h100}" in _unschedulable_message(
        _scheduled(cluster, "p")
    )


def test_toleration_allows_tainted_node(batch: client.BatchV1Api, cluster: FakeCluster) -> None:
    """A matching toleration lets the pod onto the tainted node."""
    cluster.set_node("node-a", unschedulable=True)
    cluster.set_node("node-b", unschedulable=True)
    cluster.add_node("node-t", taints=[{"key": "gpu", "value": "h100", "effect": "NoSchedule"}])
    tol = [{"key": "gpu", "operator": "Equal", "value": "h100", "effect": "NoSchedule"}]
    batch.create_namespaced_job(
        "default", _gpu_job("p", 1, tolerations=tol), field_validation="Strict"
    )
    assert _scheduled(cluster, "p")["spec"]["nodeName"] == "node-t"


def test_node_selector_excludes_other_nodes(batch: client.BatchV1Api, cluster: FakeCluster) -> None:
    """Nodes not matching nodeSelector are not used."""
    batch.create_namespaced_job(
        "default", _gpu_job("p", 1, nodeSelector={"pool": "x"}), field_validation="Strict"
    )
    message = _unschedulable_message(_scheduled(cluster, "p"))
    assert (
        message == "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
    )


def test_foreign_pod_gpus_are_accounted(batch: client.BatchV1Api, cluster: FakeCluster) -> None:
    """GPUs held by a foreign pod are not offered again."""
    cluster.add_pod("default", "other-a", "node-a", gpus=8)
    cluster.add_pod("default", "other-b", "node-b", gpus=4)
    batch.create_namespaced_job("default", _gpu_job("p", 5), field_validation="Strict")
    message = _unschedulable_message(_scheduled(cluster, "p"))
    assert message == "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."


def test_gpu_pod_fits_where_room_is(batch: client.BatchV1Api, cluster: FakeCluster) -> None:
    """A 4-GPU pod goes to the node that still has 4 free."""
    cluster.add_pod("default", "other-a", "node-a", gpus=8)
    batch.create_namespaced_job("default", _gpu_job("p", 4), field_validation="Strict")
    assert _scheduled(cluster, "p")["spec"]["nodeName"] == "node-b"
