"""End to end with a Kubernetes pool: real sfedd and Slurm lab, the test API server for the
Kubernetes side (tests/kubeapi), pods run as local processes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sfedlab import Lab

from scheduler.store import Store
from tests.e2e.door import SUBMITTED, field, poll, run, show_job
from tests.e2e.harness import Daemon, Filler, write_script
from tests.kubeapi import FakeCluster

pytestmark = pytest.mark.lab

NAMESPACE = "burst"
TRAIN = """\
set -e
mkdir -p "$SFED_CHECKPOINT_DIR"
echo "nodes=$SLURM_JOB_NODELIST nnodes=$SLURM_NNODES gpus=$SLURM_GPUS_ON_NODE"
srun bash -c 'echo "rank $SLURM_PROCID on $(hostname)"; echo $SLURM_PROCID > "$SFED_CHECKPOINT_DIR/rank-$SLURM_PROCID"'
echo done
"""


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared checkpoint root: the Slurm pools see it directly, the pods through a PVC."""
    return tmp_path_factory.mktemp("ckpt")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, checkpoints: Path) -> Iterator[FakeCluster]:
    """A node pool of three 8-GPU nodes (and one node outside the pool)."""
    with FakeCluster(tmp_path_factory.mktemp("kube")) as c:
        c.add_namespace(NAMESPACE)
        for i in (1, 2, 3):
            c.add_node(f"gpu-{i}", gpus=8, labels={"pool": "burst"})
        c.add_node("cpu-1", gpus=0)
        c.add_pvc(NAMESPACE, "checkpoints", checkpoints)
        yield c


def kube_pool(cluster: FakeCluster, checkpoints: Path) -> dict[str, Any]:
    return {
        "name": "kube",
        "kind": "kubernetes",
        "kubeconfig": str(cluster.kubeconfig),
        "namespace": NAMESPACE,
        "node_selector": {"pool": "burst"},
        "image": "python:3.11",
        "path_map": {str(checkpoints): {"pvc": "checkpoints"}},
        "price_per_gpu_hour": 4.0,  # dearer than alpha and beta: used when they are full
    }


@pytest.fixture(scope="module")
def kdaemon(
    lab: Lab, cluster: FakeCluster, checkpoints: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Daemon]:
    """sfedd over alpha, beta and the Kubernetes pool."""
    d = Daemon(
        lab,
        tmp_path_factory.mktemp("sfedd-kube"),
        extra_pools=(kube_pool(cluster, checkpoints),),
        checkpoint_root=checkpoints,
    )
    d.start()
    yield d
    d.stop()


@pytest.fixture
def full_lab(filler: Filler) -> Filler:
    """alpha and beta with every GPU taken."""
    filler.fill("alpha", nodes=2, gpus=4)
    filler.fill("beta", nodes=4, gpus=8)
    return filler


def objects_of(cluster: FakeCluster, job_id: int) -> list[tuple[str, str]]:
    """(kind, name) of every object in the namespace labelled with the federation job id."""
    out = []
    for kind in ("Job", "Pod", "Service", "ConfigMap", "Secret"):
        for obj in cluster.objects(kind, NAMESPACE):
            if (obj["metadata"].get("labels") or {}).get("sfed.io/job-id") == str(job_id):
                out.append((kind, obj["metadata"]["name"]))
    return out


def test_pools_lists_the_kubernetes_pool(kdaemon: Daemon) -> None:
    """`sfed pools` shows the node pool's free and total GPUs beside the Slurm pools."""
    pools = {p["name"]: p for p in json.loads(kdaemon.run("pools", "--json").stdout)["pools"]}
    assert set(pools) == {"alpha", "beta", "kube"}
    kube = pools["kube"]
    assert (kube["kind"], kube["gpus_total"], kube["nodes_total"]) == ("kubernetes", 24, 3)
    assert "kube" in kdaemon.run("pools").stdout


def test_job_bursts_onto_kubernetes_when_slurm_is_full(
    kdaemon: Daemon, full_lab: Filler, cluster: FakeCluster, checkpoints: Path, tmp_path: Path
) -> None:
    """-N 2 --gres=gpu:4 with alpha and beta full: runs on 2 pods, srun per task, checkpoint
    written, COMPLETED 0 in the history, output from the pod log."""
    script = write_script(tmp_path, "train.sh", TRAIN)
    job_id = kdaemon.submit(script, "-N", "2", "--gres=gpu:4", "-J", "Train ResNet!")
    job = kdaemon.wait_state(job_id, timeout=120)
    assert (job["state"], job.get("exit_code"), job["pool"]) == ("COMPLETED", 0, "kube")
    output = kdaemon.output(job_id).decode()
    name = job["remote_id"]
    assert f"nodes={name}-[0-1] nnodes=2 gpus=4" in output
    assert sorted(line for line in output.splitlines() if line.startswith("rank ")) == [
        f"rank 0 on {name}-0",
        f"rank 1 on {name}-1",
    ]
    assert sorted(p.name for p in (checkpoints / str(job_id)).iterdir()) == ["rank-0", "rank-1"]
    pods = [p for p in cluster.objects("Pod", NAMESPACE) if p["metadata"]["name"].startswith(name)]
    assert len({p["spec"]["nodeName"] for p in pods}) == 2  # one pod per node
    history = kdaemon.run(
        "history", "--parsable", "--format", "JobID,State,ExitCode,Pool,NNodes"
    ).stdout
    assert f"{job_id}|COMPLETED|0:0|kube|2" in history.splitlines()


def test_failing_task_fails_the_job_with_its_exit_code(
    kdaemon: Daemon, full_lab: Filler, tmp_path: Path
) -> None:
    """srun of a task that exits 7 on one pod: the script sees it and the job ends FAILED 7."""
    body = "srun bash -c '[ $SLURM_PROCID = 1 ] && exit 7 || true'\nexit $?\n"
    job_id = kdaemon.submit(write_script(tmp_path, "f.sh", body), "-N", "2", "--gres=gpu:8")
    job = kdaemon.wait_state(job_id, timeout=120)
    assert (job["state"], job.get("exit_code"), job["pool"]) == ("FAILED", 7, "kube")


def test_cancel_removes_every_object(
    kdaemon: Daemon, full_lab: Filler, cluster: FakeCluster, tmp_path: Path
) -> None:
    """sfed cancel of a running job deletes its Job, pods, Service and ConfigMap."""
    job_id = kdaemon.submit(
        write_script(tmp_path, "s.sh", "srun sleep 300\n"), "-N", "2", "--gres=gpu:4"
    )
    job = kdaemon.wait_state(job_id, {"RUNNING"}, timeout=120)
    assert job["pool"] == "kube" and objects_of(cluster, job_id)
    kdaemon.run("cancel", str(job_id))
    assert kdaemon.wait_state(job_id)["state"] == "CANCELLED"
    cluster.wait_for(lambda: not objects_of(cluster, job_id), timeout=60)


def test_crash_between_create_and_record_creates_no_duplicate(
    lab: Lab, cluster: FakeCluster, checkpoints: Path, full_lab: Filler, tmp_path: Path
) -> None:
    """kill -9 after the objects exist and before the store knows: the restart adopts them."""
    daemon = Daemon(
        lab,
        tmp_path / "d",
        extra_pools=(kube_pool(cluster, checkpoints),),
        checkpoint_root=checkpoints,
    )
    try:
        daemon.start(faults="crash-after-remote-submit")
        script = write_script(tmp_path, "once.sh", "srun true\n")
        job_id = daemon.submit(script, "-N", "2", "--gres=gpu:4")
        assert daemon.proc is not None and daemon.proc.wait(30) == -9
        store = Store(daemon.store_url)
        try:
            [attempt] = store.attempts(job_id)
        finally:
            store.close()
        assert (attempt.pool, attempt.remote_id, attempt.state.value) == (
            "kube",
            None,
            "SUBMITTING",
        )
        daemon.start()
        job = daemon.wait_state(job_id, timeout=120)
        assert (job["state"], job.get("exit_code"), job["attempt"]) == ("COMPLETED", 0, 1)
        jobs = [
            j["metadata"]["name"]
            for j in cluster.objects("Job", NAMESPACE)
            if j["metadata"]["labels"].get("sfed.io/federation") == daemon.federation
        ]
        assert jobs == [job["remote_id"]]
        pods = [
            p
            for p in cluster.objects("Pod", NAMESPACE)
            if p["metadata"]["name"].startswith(jobs[0])
        ]
        assert len(pods) == 2  # one run of the job, not two
    finally:
        daemon.stop()


def test_sbatch_on_the_front_door_lands_on_kubernetes(
    lab: Lab, kdaemon: Daemon, full_lab: Filler, tmp_path: Path
) -> None:
    """Unchanged `sbatch -p fed` at the door, alpha and beta full: the job runs on the pods and
    its output reaches the door job's own -o file."""
    script = tmp_path / "train.sh"
    script.write_text("#!/bin/bash\n" + TRAIN)
    with lab.sfedd.proxies_to(kdaemon.address):
        result = run(lab, "door", "sbatch", "-p", "fed", "-N", "2", "--gres=gpu:4",
                     "-o", "out-%j.txt", str(script), cwd=tmp_path)  # fmt: skip
        m = SUBMITTED.fullmatch(result.stdout)
        assert result.returncode == 0 and m, (result.stdout, result.stderr)
        door_job = m[1]
        try:
            shown = poll(
                f"door job {door_job} to end",
                lambda: (s if field(s := show_job(lab, "door", door_job), "JobState")
                         in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT") else None),
                timeout=180,
            )  # fmt: skip
        finally:
            run(lab, "door", "scancel", door_job)
    assert (field(shown, "JobState"), field(shown, "ExitCode")) == ("COMPLETED", "0:0"), shown
    comment = re.search(r"Comment=(.*)", shown)
    assert comment and " on kube (job " in comment[1], shown
    output = (tmp_path / f"out-{door_job}.txt").read_text()
    ranks = sorted(line.split(" on ")[0] for line in output.splitlines() if line.startswith("rank"))
    assert ranks == ["rank 0", "rank 1"], output
