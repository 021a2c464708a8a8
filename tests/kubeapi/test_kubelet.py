"""The kubelet: volumes, cluster DNS through /etc/hosts, logs, eviction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client

from tests.kubeapi import FakeCluster
from tests.kubeapi.builders import config_map, headless_service, job
from tests.kubeapi.lookups import job_condition, pods_of


def _run(batch: client.BatchV1Api, cluster: FakeCluster, body: dict[str, Any]) -> None:
    batch.create_namespaced_job("default", body, field_validation="Strict")
    name = body["metadata"]["name"]
    cluster.wait_for(
        lambda: job_condition(cluster, name, "Complete") or job_condition(cluster, name, "Failed")
    )


def _log(core: client.CoreV1Api, cluster: FakeCluster, job_name: str) -> bytes:
    pod = pods_of(cluster, job_name)[0]["metadata"]["name"]
    return core.read_namespaced_pod_log(
        pod, "default", container="main", _preload_content=False
    ).data


def test_peer_short_hostname_resolves_through_headless_service(
    core: client.CoreV1Api, batch: client.BatchV1Api, cluster: FakeCluster
) -> None:
    """Pod 0 resolves `peer-1` via the headless Service and its dnsConfig search domain."""
    core.create_namespaced_service(
        "default", headless_service("peer", {"app": "peer"}), field_validation="Strict"
    )
    pod = {"subdomain": "peer", "dnsConfig": {"searches": ["peer.default.svc.cluster.local"]}}
    # Each pod lingers after resolving both: a finished pod leaves the Service's endpoints, so
    # the slower peer could otherwise never see it.
    command = (
        "for i in $(seq 100); do getent hosts peer-1 && getent hosts peer-0 && sleep 0.5 && exit 0;"
        " sleep 0.1; done; exit 1"
    )
    _run(batch, cluster, job("peer", command, indexed=2, pod=pod))
    assert job_condition(cluster, "peer", "Complete") is not None
    ips = {p["spec"]["hostname"]: p["status"]["podIP"] for p in pods_of(cluster, "peer")}
    assert ips["peer-1"].encode() in _log(core, cluster, "peer")


def test_config_map_volume_items_and_mode(
    core: client.CoreV1Api, batch: client.BatchV1Api, cluster: FakeCluster, tmp_path: Path
) -> None:
    """items map a key to a path with its mode, at the mountPath."""
    core.create_namespaced_config_map(
        "default", config_map("cfg", {"conf": "hello"}), field_validation="Strict"
    )
    mount = tmp_path / "cfgmount"
    volume = {
        "name": "cfg",
        "configMap": {
            "name": "cfg",
            "items": [{"key": "conf", "path": "sub/app.conf", "mode": 0o600}],
        },
    }
    body = job(
        "cm",
        f"cat {mount}/sub/app.conf; stat -c %a {mount}/sub/app.conf",
        pod={"volumes": [volume]},
    )
    body["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "cfg", "mountPath": str(mount)}
    ]
    _run(batch, cluster, body)
    assert _log(core, cluster, "cm") == b"hello600\n"


def test_pod_waits_for_missing_config_map(batch: client.BatchV1Api, cluster: FakeCluster) -> None:
    """A missing ConfigMap keeps the pod ContainerCreating, log unavailable."""
    volume = {"name": "cfg", "configMap": {"name": "absent"}}
    body = job("wait", "true", pod={"volumes": [volume]})
    body["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "cfg", "mountPath": "/cfg"}
    ]
    batch.create_namespaced_job("default", body, field_validation="Strict")
    cluster.wait_for(
        lambda: any(p["status"].get("containerStatuses") for p in pods_of(cluster, "wait"))
    )
    (pod,) = pods_of(cluster, "wait")
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    assert (pod["status"]["phase"], waiting["reason"]) == ("Pending", "ContainerCreating")


def test_pvc_mount_maps_to_local_dir(
    core: client.CoreV1Api, batch: client.BatchV1Api, cluster: FakeCluster, tmp_path: Path
) -> None:
    """A PVC volume is the add_pvc directory, writable from the pod."""
    local = tmp_path / "shared"
    local.mkdir()
    cluster.add_pvc("default", "data", local)
    mount = tmp_path / "mnt-data"
    volume = {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}
    body = job("pvc", f"echo written > {mount}/out", pod={"volumes": [volume]})
    body["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "data", "mountPath": str(mount)}
    ]
    _run(batch, cluster, body)
    assert (local / "out").read_text() == "written\n"
    assert not (mount / "out").exists()  # the bind mount lived only in the pod's namespace


def test_log_returns_stdout_and_stderr_bytes_with_limit(
    core: client.CoreV1Api, batch: client.BatchV1Api, cluster: FakeCluster
) -> None:
    """The log holds stdout and stderr in write order; limitBytes truncates."""
    _run(batch, cluster, job("log", "echo one; echo two >&2; echo three"))
    pod = pods_of(cluster, "log")[0]["metadata"]["name"]
    assert _log(core, cluster, "log") == b"one\ntwo\nthree\n"
    limited = core.read_namespaced_pod_log(
        pod, "default", container="main", limit_bytes=5, _preload_content=False
    )
    assert limited.data == b"one\nt"


def test_evicted_pod_fails_with_disruption_target(
    batch: client.BatchV1Api, cluster: FakeCluster
) -> None:
    """Eviction: DisruptionTarget condition, process killed, pod Failed, Job counts a failure."""
    batch.create_namespaced_job("default", job("ev", "sleep 60"), field_validation="Strict")
    cluster.wait_for(
        lambda: any(p["status"].get("phase") == "Running" for p in pods_of(cluster, "ev"))
    )
    name = pods_of(cluster, "ev")[0]["metadata"]["name"]
    seen: list[dict[str, Any]] = []

    def failed() -> bool:
        seen[:] = [p for p in cluster.objects("Pod") if p["metadata"]["name"] == name]
        return not seen or seen[0]["status"]["phase"] == "Failed"

    cluster.evict("default", name)
    cluster.wait_for(failed)
    if seen:
        conds = {c["type"]: c for c in seen[0]["status"]["conditions"]}
        assert conds["DisruptionTarget"]["reason"] == "EvictionByEvictionAPI"
    cluster.wait_for(lambda: job_condition(cluster, "ev", "Failed") is not None)


def test_kubelet_eviction_marks_pod_evicted(batch: client.BatchV1Api, cluster: FakeCluster) -> None:
    """Kubelet-pressure eviction leaves the pod Failed with reason Evicted."""
    batch.create_namespaced_job(
        "default", job("kev", "sleep 60", backoffLimit=5), field_validation="Strict"
    )
    cluster.wait_for(
        lambda: any(p["status"].get("phase") == "Running" for p in pods_of(cluster, "kev"))
    )
    name = pods_of(cluster, "kev")[0]["metadata"]["name"]
    cluster.evict("default", name, reason="TerminationByKubelet")

    def evicted() -> bool:
        return any(
            p["metadata"]["name"] == name and p["status"].get("reason") == "Evicted"
            for p in cluster.objects("Pod")
        )

    cluster.wait_for(evicted)
