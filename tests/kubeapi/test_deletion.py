"""Deletion: propagation policies, graceful pod termination, garbage collection."""

from __future__ import annotations

import os
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kubeapi import FakeCluster
from tests.kubeapi.builders import config_map, headless_service, job
from tests.kubeapi.lookups import pods_of


def _owned_by(job_obj: Any) -> list[dict[str, Any]]:
    ref = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": job_obj.metadata.name,
        "uid": job_obj.metadata.uid,
    }
    return [ref]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_foreground_delete_removes_job_pods_and_owned_objects(
    core: client.CoreV1Api, batch: client.BatchV1Api, cluster: FakeCluster, tmp_path
) -> None:
    """Foreground: the pods' processes die, owned ConfigMap and Service go, then the Job."""
    pidfile = tmp_path / "pid"
    command = f"echo $$$$ > {pidfile}; exec sleep 60"  # "$$" is the kubelet's escape for "$"
    created = batch.create_namespaced_job("default", job("fg", command), field_validation="Strict")
    cm = config_map(
        "fg-cfg", {"a": "b"}, metadata={"name": "fg-cfg", "ownerReferences": _owned_by(created)}
    )
    core.create_namespaced_config_map("default", cm, field_validation="Strict")
    svc = headless_service("fg", {"app": "fg"})
    svc["metadata"]["ownerReferences"] = _owned_by(created)
    core.create_namespaced_service("default", svc, field_validation="Strict")
    cluster.wait_for(lambda: pidfile.exists() and pidfile.read_text().strip() != "")
    pid = int(pidfile.read_text())
    batch.delete_namespaced_job("fg", "default", propagation_policy="Foreground")
    cluster.wait_for(lambda: not cluster.objects("Job"))
    assert not pods_of(cluster, "fg")
    assert not cluster.objects("ConfigMap") and not cluster.objects("Service")
    assert not _pid_alive(pid)


def test_background_delete_removes_job_at_once(
    batch: client.BatchV1Api, cluster: FakeCluster
) -> None:
    """Background: the Job is gone immediately, its pods afterwards."""
    batch.create_namespaced_job("default", job("bg", "sleep 60"), field_validation="Strict")
    cluster.wait_for(lambda: bool(pods_of(cluster, "bg")))
    batch.delete_namespaced_job(
        "bg", "default", body=client.V1DeleteOptions(propagation_policy="Background")
    )
    assert not cluster.objects("Job")
    cluster.wait_for(lambda: not pods_of(cluster, "bg"))


def test_orphan_delete_keeps_pods(batch: client.BatchV1Api, cluster: FakeCluster) -> None:
    """Orphan: pods survive without their ownerReference."""
    batch.create_namespaced_job("default", job("or", "sleep 60"), field_validation="Strict")
    cluster.wait_for(lambda: bool(pods_of(cluster, "or")))
    batch.delete_namespaced_job("or", "default", propagation_policy="Orphan")
    (pod,) = pods_of(cluster, "or")
    assert "ownerReferences" not in pod["metadata"]


def test_delete_missing_job_not_found(batch: client.BatchV1Api) -> None:
    """DELETE of a missing object is a 404."""
    with pytest.raises(ApiException) as e:
        batch.delete_namespaced_job("ghost", "default", propagation_policy="Background")
    assert e.value.status == 404


def test_no_duplicate_create_requests_recorded(
    batch: client.BatchV1Api, cluster: FakeCluster
) -> None:
    """The request log shows each API call once."""
    batch.create_namespaced_job("default", job("once"), field_validation="Strict")
    creates = [
        r for r in cluster.requests if r == ("POST", "/apis/batch/v1/namespaces/default/jobs")
    ]
    assert len(creates) == 1
