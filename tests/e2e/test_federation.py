"""End to end on the real lab: sfed submit -> sfedd -> real slurmctld/slurmd -> history."""

from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
import pytest
from sfedlab import Lab

from scheduler.proto_gen.sfed.v1 import sfed_pb2 as pb
from scheduler.proto_gen.sfed.v1 import sfed_pb2_grpc as pb_grpc
from scheduler.store import Store
from tests.e2e.harness import Daemon, Filler, remote_jobs_tagged, write_script
from tests.fixtures.credentials import proven

pytestmark = pytest.mark.lab

HOSTNAME_JOB = "srun hostname\nsrun bash -c 'echo node=$SLURMD_NODENAME'\n"


def test_job_lands_on_beta_when_alpha_is_full(
    daemon: Daemon, filler: Filler, tmp_path: Path
) -> None:
    """With alpha's GPUs taken, a 2-node gpu:4 job runs on beta on 2 nodes and ends COMPLETED 0."""
    filler.fill("alpha", nodes=2, gpus=4)
    script = write_script(tmp_path, "hello.sh", HOSTNAME_JOB)
    out = tmp_path / "out-%j.txt"
    job_id = daemon.submit(script, "-N", "2", "--gres=gpu:4", "-o", str(out))
    job = daemon.wait_state(job_id)
    assert (job["state"], job.get("exit_code"), job["pool"]) == ("COMPLETED", 0, "beta")
    output = (tmp_path / f"out-{job['remote_id']}.txt").read_text()
    assert sorted(line for line in output.splitlines() if line.startswith("node=")) == [
        "node=beta-n1",
        "node=beta-n2",
    ]
    history = daemon.run(
        "history",
        "--state",
        "COMPLETED",
        "--parsable",
        "--format",
        "JobID,State,ExitCode,Pool,NNodes",
    ).stdout
    assert f"{job_id}|COMPLETED|0:0|beta|2" in history.splitlines()


def test_failing_script_ends_failed_with_its_exit_code(daemon: Daemon, tmp_path: Path) -> None:
    """A script that exits 3 ends FAILED with exit code 3 in the history."""
    script = write_script(tmp_path, "fail.sh", "srun hostname\nexit 3\n")
    job_id = daemon.submit(script, "-N", "2", "--gres=gpu:4", "-o", "/dev/null")
    job = daemon.wait_state(job_id)
    assert (job["state"], job.get("exit_code")) == ("FAILED", 3)
    history = daemon.run("history", "--json").stdout
    [entry] = [j for j in json.loads(history)["jobs"] if int(j["id"]) == job_id]
    assert (entry["state"], entry["exit_code"]) == ("FAILED", 3)


def test_cheaper_pool_is_chosen_when_both_fit(daemon: Daemon, tmp_path: Path) -> None:
    """With room on both, the job goes to the cheaper alpha, and explain says why."""
    script = write_script(tmp_path, "cheap.sh", "true\n")
    job_id = daemon.submit(script, "-N", "1", "--gres=gpu:1", "-o", "/dev/null")
    job = daemon.wait_state(job_id)
    assert (job["state"], job["pool"]) == ("COMPLETED", "alpha")
    explanation = daemon.run("explain", str(job_id)).stdout
    assert "alpha:" in explanation and "beta: fits, but alpha preferred" in explanation


def test_drained_pool_gets_no_new_jobs(daemon: Daemon, tmp_path: Path) -> None:
    """Draining both pools keeps a job waiting with the reason; resuming one lets it run there."""
    daemon.run("drain", "alpha", "--reason", "maintenance")
    daemon.run("drain", "beta")
    try:
        script = write_script(tmp_path, "wait.sh", "true\n")
        job_id = daemon.submit(script, "--gres=gpu:1", "-o", "/dev/null")
        time.sleep(2)  # several loop passes (0.5 s each)
        job = daemon.show(job_id)
        assert job["state"] == "PENDING" and "alpha: drained" in job["reason"]
        pools = {p["name"]: p for p in json.loads(daemon.run("pools", "--json").stdout)["pools"]}
        assert pools["alpha"]["state"] == "DRAINED" and pools["alpha"]["reason"] == "maintenance"
        daemon.run("resume", "beta")
        job = daemon.wait_state(job_id)
        assert (job["state"], job["pool"]) == ("COMPLETED", "beta")
    finally:
        daemon.run("resume", "alpha")
        daemon.run("resume", "beta")


def test_impossible_request_is_rejected_at_submit(daemon: Daemon, tmp_path: Path) -> None:
    """16 GPUs per node is refused at submit with each pool's reason, and nothing is stored."""
    before = len(json.loads(daemon.run("history", "--json").stdout).get("jobs", []))
    script = write_script(tmp_path, "big.sh", "true\n")
    result = daemon.run("submit", "--gres=gpu:16", str(script), check=False)
    assert result.returncode == 1
    assert "at most 8 GPUs per node (job needs 16)" in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert len(json.loads(daemon.run("history", "--json").stdout).get("jobs", [])) == before


def test_malformed_rpc_gets_invalid_argument(daemon: Daemon) -> None:
    """A malformed SubmitJob is answered INVALID_ARGUMENT naming the field; nothing is stored."""
    with grpc.insecure_channel(daemon.address) as channel:
        stub = pb_grpc.FederationStub(channel)
        listing = pb.ListJobsRequest()

        def count() -> int:
            return len(
                stub.ListJobs(listing, timeout=10, metadata=proven("ListJobs", listing)).jobs
            )

        before = count()
        bad = pb.SubmitJobRequest(
            user="root", spec=pb.JobSpec(script=b"#!/bin/sh\n", nodes=2, ntasks=1)
        )
        with pytest.raises(grpc.RpcError) as info:
            stub.SubmitJob(bad, timeout=10, metadata=proven("SubmitJob", bad))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details().startswith("spec.ntasks:")
        empty = pb.SubmitJobRequest(user="root")
        with pytest.raises(grpc.RpcError) as info:
            stub.SubmitJob(empty, timeout=10, metadata=proven("SubmitJob", empty))
        assert (info.value.code(), info.value.details()) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "spec: required",
        )
        assert count() == before


def test_cancel_stops_the_remote_job(daemon: Daemon, lab: Lab, tmp_path: Path) -> None:
    """sfed cancel of a running job cancels it on its pool and ends it CANCELLED."""
    script = write_script(tmp_path, "long.sh", "sleep 300\n")
    job_id = daemon.submit(script, "--gres=gpu:1", "-o", "/dev/null")
    job = daemon.wait_state(job_id, {"RUNNING"})
    daemon.run("cancel", str(job_id))
    job = daemon.wait_state(job_id)
    assert job["state"] == "CANCELLED"
    tag = f"sfed/{daemon.federation}/{job_id}/1"
    [remote] = remote_jobs_tagged(lab, job["pool"], tag)
    assert remote == job["remote_id"]


def test_crash_between_sbatch_and_commit_submits_once(
    fresh_daemon: Daemon, lab: Lab, tmp_path: Path
) -> None:
    """kill -9 after sbatch and before the store's commit: the restart finds the job, runs it once."""
    daemon = fresh_daemon
    daemon.start(faults="crash-after-remote-submit")
    script = write_script(tmp_path, "once.sh", "srun hostname\n")
    job_id = daemon.submit(script, "-N", "2", "--gres=gpu:1", "-o", "/dev/null")
    assert daemon.proc is not None
    assert daemon.proc.wait(30) == -9  # died by SIGKILL at the fault point
    store = Store(daemon.store_url)
    try:
        [attempt] = store.attempts(job_id)
        assert attempt.remote_id is None and attempt.state.value == "SUBMITTING"
    finally:
        store.close()
    tag = f"sfed/{daemon.federation}/{job_id}/1"
    pool = attempt.pool
    assert len(remote_jobs_tagged(lab, pool, tag)) == 1
    daemon.start()
    job = daemon.wait_state(job_id)
    assert (job["state"], job.get("exit_code"), job["attempt"]) == ("COMPLETED", 0, 1)
    assert remote_jobs_tagged(lab, pool, tag) == [job["remote_id"]]
