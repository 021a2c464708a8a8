"""The Job controller, scheduler and kubelet together run Jobs as a real cluster would."""

from __future__ import annotations

from kubernetes import client

from tests.kubeapi import FakeCluster
from tests.kubeapi.builders import anti_affinity, job
from tests.kubeapi.lookups import job_condition, pods_of


def _create(batch: client.BatchV1Api, body: dict) -> None:
    batch.create_namespaced_job("default", body, field_validation="Strict")


def test_indexed_job_with_anti_affinity_runs_on_distinct_nodes(
    batch: client.BatchV1Api, cluster: FakeCluster
) -> None:
    """Two indexed pods with hostname anti-affinity land on two nodes and the Job completes."""
    _create(
        batch,
        job(
            "idx",
            'echo "index=$JOB_COMPLETION_INDEX"',
            indexed=2,
            pod={"affinity": anti_affinity("idx")},
        ),
    )
    cluster.wait_for(lambda: job_condition(cluster, "idx", "Complete") is not None)
    pods = pods_of(cluster, "idx")
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["node-a", "node-b"]
    assert sorted(p["spec"]["hostname"] for p in pods) == ["idx-0", "idx-1"]
    assert batch.read_namespaced_job("idx", "default").status.completed_indexes == "0-1"


def test_indexed_pod_sees_its_completion_index(
    core: client.CoreV1Api, batch: client.BatchV1Api, cluster: FakeCluster
) -> None:
    """JOB_COMPLETION_INDEX reaches the command, as the log shows."""
    _create(batch, job("echo", 'echo "index=$JOB_COMPLETION_INDEX"', indexed=2))
    cluster.wait_for(lambda: job_condition(cluster, "echo", "Complete") is not None)
    logs = set()
    for pod in pods_of(cluster, "echo"):
        resp = core.read_namespaced_pod_log(
            pod["metadata"]["name"], "default", container="main", _preload_content=False
        )
        logs.add(resp.data)
    assert logs == {b"index=0\n", b"index=1\n"}


def test_failed_container_fails_job_with_backoff_limit(
    batch: client.BatchV1Api, cluster: FakeCluster
) -> None:
    """exit 3 with backoffLimit 0: Job Failed BackoffLimitExceeded, exitCode 3 in the pod."""
    _create(batch, job("bad", "exit 3"))
    cluster.wait_for(lambda: job_condition(cluster, "bad", "Failed") is not None)
    assert job_condition(cluster, "bad", "Failed")["reason"] == "BackoffLimitExceeded"
    (pod,) = pods_of(cluster, "bad")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (pod["status"]["phase"], terminated["exitCode"], terminated["reason"]) == (
        "Failed",
        3,
        "Error",
    )


def test_failed_pod_replaced_within_backoff_limit(
    batch: client.BatchV1Api, cluster: FakeCluster, tmp_path
) -> None:
    """A failure within backoffLimit gets a new pod for the same index."""
    marker = tmp_path / "tried"
    command = f"if [ -e {marker} ]; then exit 0; fi; touch {marker}; exit 1"
    _create(batch, job("retry", command, indexed=1, backoffLimit=1))
    cluster.wait_for(lambda: job_condition(cluster, "retry", "Complete") is not None)
    status = batch.read_namespaced_job("retry", "default").status
    assert (status.failed, status.succeeded) == (1, 1)


def test_active_deadline_fails_job(batch: client.BatchV1Api, cluster: FakeCluster) -> None:
    """activeDeadlineSeconds: the Job fails DeadlineExceeded and its pod is terminated."""
    _create(batch, job("slow", "sleep 60", activeDeadlineSeconds=1))
    cluster.wait_for(lambda: job_condition(cluster, "slow", "Failed") is not None, timeout=15)
    assert job_condition(cluster, "slow", "Failed")["reason"] == "DeadlineExceeded"
    assert all(p["status"]["phase"] == "Failed" for p in pods_of(cluster, "slow"))


def test_ttl_after_finished_deletes_job(batch: client.BatchV1Api, cluster: FakeCluster) -> None:
    """ttlSecondsAfterFinished removes the finished Job and its pods."""
    _create(batch, job("short", "true", ttlSecondsAfterFinished=1))
    cluster.wait_for(lambda: job_condition(cluster, "short", "Complete") is not None)
    cluster.wait_for(
        lambda: not cluster.objects("Job") and not pods_of(cluster, "short"), timeout=15
    )


def test_parallelism_limits_active_pods(batch: client.BatchV1Api, cluster: FakeCluster) -> None:
    """An Indexed Job of 3 with parallelism 1 never has two pods at once."""
    body = job("serial", "sleep 0.2", indexed=3)
    body["spec"]["parallelism"] = 1
    _create(batch, body)
    peak = 0

    def done() -> bool:
        nonlocal peak
        live = [
            p
            for p in pods_of(cluster, "serial")
            if p["status"].get("phase") in ("Pending", "Running")
        ]
        peak = max(peak, len(live))
        return job_condition(cluster, "serial", "Complete") is not None

    cluster.wait_for(done)
    assert peak == 1
