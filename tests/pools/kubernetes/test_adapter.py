"""KubernetesPool through the official client against the test API server (tests/kubeapi)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from scheduler.domain import AttemptState, RemoteJob, RemoteSubmission, RemoteTag
from scheduler.pools.base import PoolError, PoolUnreachable
from scheduler.pools.kubernetes.adapter import KubernetesPool
from tests.fixtures import submissions
from tests.fixtures.polling import wait_state
from tests.fixtures.submissions import fresh_tag
from tests.kubeapi import FakeCluster
from tests.pools.kubernetes.conftest import A100, NAMESPACE, NET_LABEL, PRODUCT, pool_config

T = TypeVar("T")
TERMINAL = {AttemptState.COMPLETED, AttemptState.FAILED, AttemptState.CANCELLED}


def submission(script: str | bytes, **fields: Any) -> RemoteSubmission:
    """Attempt 1 of job 7 of a federation no other test uses; any request field may be given."""
    body = script.encode() if isinstance(script, str) else script
    return submissions.submission(
        tag=fresh_tag(7), sfed_env={"SFED_JOB_ID": "7"}, script=body, **fields
    )


def run(
    cluster: FakeCluster, scenario: Callable[[KubernetesPool], Awaitable[T]], **config: Any
) -> T:
    """Run `scenario(pool)` in a fresh event loop and always close the pool."""

    async def main() -> T:
        pool = KubernetesPool(pool_config(cluster, **config), timeout=10)
        try:
            return await scenario(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


async def submit_and_wait(pool: KubernetesPool, sub: RemoteSubmission) -> RemoteJob:
    remote_id = await pool.submit(sub)
    return await wait_state(pool, remote_id, TERMINAL)


def sfed_objects(cluster: FakeCluster, remote_id: str) -> list[str]:
    """Kinds of the objects (Job, pods, Service, ConfigMap) of one remote job."""
    kinds = []
    for kind in ("Job", "Pod", "Service", "ConfigMap", "Secret"):
        for obj in cluster.objects(kind, NAMESPACE):
            if (obj["metadata"].get("labels") or {}).get("sfed.io/job") == remote_id or obj[
                "metadata"
            ]["name"] == remote_id:
                kinds.append(kind)
    return kinds


def test_snapshot_counts_only_usable_nodes_of_the_pool(cluster: FakeCluster) -> None:
    """a1, a2 usable; a3 cordoned and a4 tainted are listed unschedulable; t4 node absent."""
    nodes = run(cluster, lambda p: p.snapshot())
    by_name = {n.name: n for n in nodes}
    assert set(by_name) == {"a1", "a2", "a3", "a4"}
    assert [n for n in by_name if by_name[n].schedulable] == ["a1", "a2"]
    assert by_name["a1"].gpus_total == 4 and by_name["a1"].cpus_total == 16


def test_snapshot_subtracts_gpus_of_other_tenants_pods(cluster: FakeCluster) -> None:
    """A foreign pod holding 3 GPUs on a1 leaves 1 free there."""
    name = f"other-{uuid.uuid4().hex[:6]}"
    cluster.add_pod("default", name, "a1", gpus=3)

    async def scenario(pool: KubernetesPool) -> dict[str, Any]:
        try:
            return {n.name: n for n in await pool.snapshot()}
        finally:
            await pool.api.call(pool.api.core.delete_namespaced_pod, name, "default")

    nodes = run(cluster, scenario)
    assert nodes["a1"].gpus_free == 1 and nodes["a2"].gpus_free == 4


def test_a_tolerated_taint_makes_the_node_usable(cluster: FakeCluster) -> None:
    """With the pool's toleration, a4 counts."""
    toleration = {"key": "dedicated", "value": "infer", "effect": "NoSchedule"}
    nodes = run(cluster, lambda p: p.snapshot(), tolerations=[toleration])
    assert {n.name for n in nodes if n.schedulable} == {"a1", "a2", "a4"}


TYPED = {"gpu_type_label": PRODUCT, "gpu_types": {A100: "a100"}, "feature_labels": [NET_LABEL]}


def test_snapshot_reads_gpu_types_and_features_from_node_labels(cluster: FakeCluster) -> None:
    """The product label (mapped) is each node's GPU type; the feature label's value a feature."""
    nodes = {n.name: n for n in run(cluster, lambda p: p.snapshot(), **TYPED)}
    assert (nodes["a1"].gpu_type, nodes["a1"].features) == ("a100", ())
    assert (nodes["a2"].gpu_type, nodes["a2"].features) == ("a100", ("ib",))


def test_a_constrained_job_runs_on_a_node_with_the_feature(cluster: FakeCluster) -> None:
    """A typed job with -C ib gets a node affinity: its pod runs on a2, the node labelled ib
    (without it, the test cluster's scheduler picks a1)."""
    sub = submission("#!/bin/sh\ntrue\n", gpus_per_node=1, gpu_type="a100", constraint="ib")
    job = run(cluster, lambda p: submit_and_wait(p, sub), **TYPED)
    assert (job.state, job.nodelist) == (AttemptState.COMPLETED, "a2")


def test_two_node_job_runs_srun_across_pods(cluster: FakeCluster, pv_dir: Path) -> None:
    """srun runs once per task on the two pods; the checkpoint lands on the PVC; exit 0."""
    script = (
        "#!/bin/sh\n"
        "srun sh -c 'echo task $SLURM_PROCID on $(hostname) > /sfed-test/ckpt/$RUN-$SLURM_PROCID'\n"
        "echo nodes=$SLURM_JOB_NODELIST\n"
    )
    tag = uuid.uuid4().hex[:8]
    sub = submission(script, nodes=2, gpus_per_node=2, environment={"RUN": tag})

    async def scenario(pool: KubernetesPool) -> tuple[RemoteJob, bytes]:
        job = await submit_and_wait(pool, sub)
        return job, await pool.read_output("", 0, 1 << 20, remote_id=job.remote_id)

    job, output = run(cluster, scenario)
    assert (job.state, job.exit_code) == (AttemptState.COMPLETED, 0)
    assert job.tag == sub.tag and sorted(job.nodelist.split(",")) == ["a1", "a2"]
    assert output.decode().strip() == f"nodes={job.remote_id}-[0-1]"
    assert (pv_dir / f"{tag}-0").read_text() == f"task 0 on {job.remote_id}-0\n"
    assert (pv_dir / f"{tag}-1").read_text() == f"task 1 on {job.remote_id}-1\n"


def test_failing_script_reports_its_exit_code(cluster: FakeCluster) -> None:
    """exit 3 -> FAILED with exit code 3."""
    job = run(cluster, lambda p: submit_and_wait(p, submission("#!/bin/sh\nexit 3\n")))
    assert (job.state, job.exit_code) == (AttemptState.FAILED, 3)


def test_output_is_read_from_an_offset(cluster: FakeCluster) -> None:
    """read_output(offset, limit) returns that byte range of the first pod's log."""
    sub = submission("#!/bin/sh\nprintf 'abcdefghij'\n")

    async def scenario(pool: KubernetesPool) -> bytes:
        job = await submit_and_wait(pool, sub)
        return await pool.read_output("", 3, 4, remote_id=job.remote_id)

    assert run(cluster, scenario) == b"defg"


def test_following_output_streams_the_log_once(cluster: FakeCluster) -> None:
    """Reading a growing log chunk by chunk to its end makes one log request, not one per
    read (the API has no byte offsets), and yields every byte in order."""
    lines = "".join(f"line {i}\n" for i in range(20))
    sub = submission("#!/bin/sh\nfor i in $(seq 0 19); do echo line $i; sleep 0.05; done\n")

    async def scenario(pool: KubernetesPool) -> tuple[bytes, int, str]:
        remote_id = await pool.submit(sub)
        out, reads = b"", 0
        deadline = asyncio.get_running_loop().time() + 120  # bounded, whatever the job does
        while asyncio.get_running_loop().time() < deadline:
            chunk = await pool.read_output("", len(out), 16, remote_id=remote_id)
            reads += 1
            out += chunk
            job = (await pool.poll([remote_id])).get(remote_id)
            ended = job is None or job.state in TERMINAL
            if not chunk and ended and (len(out) >= len(lines) or job is None):
                return out, reads, remote_id
            if not chunk:
                await asyncio.sleep(0.05)
        raise AssertionError(f"the log did not reach its end in 120 s: {out!r}")

    out, reads, remote_id = run(cluster, scenario)
    log_requests = [
        p for m, p in cluster.requests if p.endswith("/log") and f"/pods/{remote_id}-0-" in p
    ]
    assert out.decode() == lines
    assert reads > len(lines) // 16 and len(log_requests) == 1, (reads, log_requests)


def test_nothing_is_read_before_the_pod_starts(cluster: FakeCluster) -> None:
    """Before pod 0's container starts there is no output yet: b"", not an error."""
    sub = submission("#!/bin/sh\ntrue\n", nodes=3, gpus_per_node=4)  # never fits: 2 nodes

    async def scenario(pool: KubernetesPool) -> bytes:
        remote_id = await pool.submit(sub)
        try:
            return await pool.read_output("", 0, 100, remote_id=remote_id)
        finally:
            await pool.cancel(remote_id)

    assert run(cluster, scenario) == b""


def test_submitting_the_same_tag_twice_adopts_the_first(cluster: FakeCluster) -> None:
    """A repeated submission meets the existing objects: one Job, same name."""
    sub = submission("#!/bin/sh\nsleep 30\n")

    async def scenario(pool: KubernetesPool) -> tuple[str, str, RemoteJob | None]:
        first = await pool.submit(sub)
        second = await pool.submit(sub)
        found = await pool.find(sub.tag)
        await pool.cancel(first)
        return first, second, found

    first, second, found = run(cluster, scenario)
    assert first == second and found is not None and found.remote_id == first


def test_the_jobs_companions_are_owned_by_it(cluster: FakeCluster) -> None:
    """Secret, ConfigMap and Service name the Job as owner, so Kubernetes removes them with it."""
    sub = submission("#!/bin/sh\ntrue\n")

    async def scenario(pool: KubernetesPool) -> str:
        remote_id = await pool.submit(sub)
        await wait_state(pool, remote_id, TERMINAL)
        return remote_id

    remote_id = run(cluster, scenario)
    [job] = [j for j in cluster.objects("Job", NAMESPACE) if j["metadata"]["name"] == remote_id]
    for kind in ("Secret", "ConfigMap", "Service"):
        [obj] = [o for o in cluster.objects(kind, NAMESPACE) if o["metadata"]["name"] == remote_id]
        [owner] = obj["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["uid"]) == ("Job", job["metadata"]["uid"]), kind


def test_a_refused_job_leaves_nothing_behind(
    cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the API server refuses the Job, the Secret, ConfigMap and Service made before it
    are deleted again."""
    from scheduler.pools.kubernetes import adapter

    real_build = adapter.manifests.build
    built: list[str] = []

    def spoilt(*args: Any, **kwargs: Any) -> Any:
        objects = real_build(*args, **kwargs)
        _bad_label(objects.job)
        built.append(objects.name)
        return objects

    monkeypatch.setattr(adapter.manifests, "build", spoilt)
    with pytest.raises(PoolError):
        run(cluster, lambda p: p.submit(submission("#!/bin/sh\ntrue\n")))
    assert built and not sfed_objects(cluster, built[0])


def test_find_returns_none_for_an_unknown_tag(cluster: FakeCluster) -> None:
    """No objects with the tag: None."""
    assert run(cluster, lambda p: p.find(RemoteTag("nosuch", 1, 1))) is None


def test_cancel_deletes_every_object(cluster: FakeCluster) -> None:
    """cancel of a running 2-pod job removes Job, pods, Service and ConfigMap."""
    sub = submission("#!/bin/sh\nsrun sleep 300\n", nodes=2)

    async def scenario(pool: KubernetesPool) -> str:
        remote_id = await pool.submit(sub)
        await wait_state(pool, remote_id, {AttemptState.RUNNING})
        await pool.cancel(remote_id)
        await pool.cancel(remote_id)  # idempotent
        return remote_id

    remote_id = run(cluster, scenario)
    cluster.wait_for(lambda: not sfed_objects(cluster, remote_id), timeout=60)


def test_a_job_deleted_on_the_cluster_is_left_out(cluster: FakeCluster) -> None:
    """Someone deletes the Job with kubectl: once it is gone, poll leaves it out (the loop
    records the attempt LOST, as for any job a pool forgot)."""
    sub = submission("#!/bin/sh\nsleep 300\n")

    async def scenario(pool: KubernetesPool) -> dict[str, RemoteJob]:
        remote_id = await pool.submit(sub)
        await pool.api.call(
            pool.api.batch.delete_namespaced_job,
            remote_id,
            NAMESPACE,
            propagation_policy="Background",
        )
        for _ in range(300):  # bounded: the test cluster deletes within a few seconds
            polled = await pool.poll([remote_id])
            if not polled:
                return polled
            await asyncio.sleep(0.1)
        raise AssertionError(f"the deleted Job is still reported: {polled}")

    assert run(cluster, scenario) == {}


def test_an_evicted_pod_is_reported_as_preemption(cluster: FakeCluster) -> None:
    """Evicting a running pod fails the attempt with a reason that says preempted."""
    sub = submission("#!/bin/sh\nsleep 300\n")

    async def scenario(pool: KubernetesPool) -> RemoteJob:
        remote_id = await pool.submit(sub)
        await wait_state(pool, remote_id, {AttemptState.RUNNING})
        [pod] = [
            p["metadata"]["name"]
            for p in cluster.objects("Pod", NAMESPACE)
            if p["metadata"]["labels"].get("sfed.io/job") == remote_id
        ]
        cluster.evict(NAMESPACE, pod, reason="PreemptionByScheduler")
        return await wait_state(pool, remote_id, TERMINAL)

    job = run(cluster, scenario)
    assert job.state == AttemptState.FAILED and job.reason.startswith("preempted:")


def test_a_job_too_wide_for_the_pool_waits_with_the_scheduler_reason(
    cluster: FakeCluster,
) -> None:
    """3 pods of 4 GPUs with 2 usable nodes: PENDING, the reason from the scheduler."""
    sub = submission("#!/bin/sh\ntrue\n", nodes=3, gpus_per_node=4)

    async def scenario(pool: KubernetesPool) -> RemoteJob:
        remote_id = await pool.submit(sub)
        await asyncio.sleep(1)
        job = (await pool.poll([remote_id]))[remote_id]
        await pool.cancel(remote_id)
        return job

    job = run(cluster, scenario)
    assert job.state == AttemptState.PENDING and "Unschedulable" in job.reason


def test_an_unknown_namespace_is_a_pool_error(cluster: FakeCluster) -> None:
    """Submitting into a namespace that does not exist: PoolError naming it."""
    with pytest.raises(PoolError, match="nosuchns"):
        run(cluster, lambda p: p.submit(submission("#!/bin/sh\ntrue\n")), namespace="nosuchns")


def test_a_stopped_api_server_is_unreachable(tmp_path: Path) -> None:
    """No server at the kubeconfig's address: PoolUnreachable, not a crash."""
    with FakeCluster(tmp_path) as c:
        c.add_node("n1", gpus=1, labels={"pool": "a100"})
    with pytest.raises(PoolUnreachable):
        run(c, lambda p: p.snapshot())


def _misspell(job: dict[str, Any]) -> None:
    job["spec"]["template"]["spec"]["containers"][0]["gpus"] = 1  # caught by the client


def _bad_label(job: dict[str, Any]) -> None:
    job["metadata"]["labels"]["sfed.io/job-name"] = "not a label value!"  # by the server


@pytest.mark.parametrize("spoil", [_misspell, _bad_label], ids=["unknown-field", "bad-label"])
def test_a_manifest_that_is_refused_is_a_pool_error(
    cluster: FakeCluster, monkeypatch: pytest.MonkeyPatch, spoil: Callable[[dict[str, Any]], None]
) -> None:
    """A Job refused by the client's model check or by the API server is a PoolError."""
    from scheduler.pools.kubernetes import adapter

    real_build = adapter.manifests.build

    def spoilt(*args: Any, **kwargs: Any) -> Any:
        objects = real_build(*args, **kwargs)
        spoil(objects.job)
        return objects

    monkeypatch.setattr(adapter.manifests, "build", spoilt)
    with pytest.raises(PoolError, match="cannot create Job"):
        run(cluster, lambda p: p.submit(submission("#!/bin/sh\ntrue\n")))
