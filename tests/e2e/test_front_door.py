"""The front door end to end: unchanged `sbatch -p fed` on the lab's door -> job_submit shim ->
sfed-proxy -> the lab's sfedd -> a real pool, and everything the researcher sees back at the door.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import pytest
from sfedlab import Lab

from tests.e2e.door import (
    DOOR,
    SUBMITTED,
    FrontDoor,
    batch_script,
    checked,
    field,
    job_name,
    show_job,
    tagged,
    wait_remote,
)

pytestmark = pytest.mark.lab

TRAIN = 'echo "nodelist=$SLURM_JOB_NODELIST"\nsrun bash -c \'echo "node=$SLURMD_NODENAME"\'\n'
SLEEP = "sleep 300\n"
BATCH_ONLY = (
    "sfed: the fed partition takes batch jobs only (sbatch); use srun inside the batch script"
)
NO_POOL = "sbatch: error: sfed: no pool of the federation can ever run this job: "
# A job name and a comment that run commands if anything on the way hands them to a shell.
EVIL_NAME = "x; touch /tmp/pwned-door"
EVIL_COMMENT = "$(touch /tmp/pwned-door2)"
PWNED = (Path("/tmp/pwned-door"), Path("/tmp/pwned-door2"))


def test_fed_job_runs_on_two_nodes_of_a_pool_with_its_output_at_the_door(
    door: FrontDoor, lab: Lab, tmp_path: Path
) -> None:
    """A 2-node gpu:4 fed job runs on two nodes of one pool; out-<id>.txt at the door has it."""
    script = door.script("train.sh", TRAIN)
    result = door.sbatch("-p", "fed", "-N", "2", "--gres=gpu:4", "-o", "out-%j.txt", script)
    m = SUBMITTED.fullmatch(result.stdout)
    assert result.returncode == 0 and m, (result.returncode, result.stdout, result.stderr)
    job = m[1]
    shown = door.wait_ended(job)
    assert (field(shown, "JobState"), field(shown, "ExitCode")) == ("COMPLETED", "0:0"), shown
    lines = (tmp_path / f"out-{job}.txt").read_text().splitlines()
    nodes = sorted(line.removeprefix("node=") for line in lines if line.startswith("node="))
    pools = {node.rsplit("-n", 1)[0] for node in nodes}
    assert len(set(nodes)) == 2 and len(pools) == 1 and pools <= {"alpha", "beta"}, lines
    [nodelist] = [line.removeprefix("nodelist=") for line in lines if line.startswith("nodelist=")]
    hostnames = checked(lab, DOOR, "scontrol", "show", "hostnames", nodelist).split()
    assert sorted(hostnames) == nodes, lines


def test_squeue_shows_the_running_job_on_fed_with_remote_state_and_pool(
    door: FrontDoor, lab: Lab
) -> None:
    """squeue shows the running job on fed; its comment names the remote state, pool and id."""
    job = door.submit("-p", "fed", "--gres=gpu:1", "-o", "/dev/null", door.script("s.sh", SLEEP))
    door.wait_comment(job, {"RUNNING"})
    row = checked(lab, DOOR, "squeue", "-h", "-j", job, "-o", "%P|%T|%k").strip()
    partition, state, comment = row.split("|", 2)
    m = re.fullmatch(r"sfed (\d+): RUNNING on (alpha|beta) \(job (\d+)\)", comment)
    assert (partition, state) == ("fed", "RUNNING") and m, row
    fed = door.federation.show(int(m[1]))
    assert (fed["state"], fed["pool"], fed["remote_id"]) == ("RUNNING", m[2], m[3]), fed
    assert field(show_job(lab, m[2], m[3]), "JobState") == "RUNNING"


def test_failing_fed_job_ends_failed_with_its_exit_code(door: FrontDoor) -> None:
    """A fed job whose script exits 3 ends FAILED with ExitCode=3:0 at the door."""
    job = door.submit("-p", "fed", "-o", "out-%j.txt", door.script("fail.sh", "exit 3\n"))
    shown = door.wait_ended(job)
    assert (field(shown, "JobState"), field(shown, "ExitCode")) == ("FAILED", "3:0"), shown


def test_afterok_on_fed_jobs_follows_their_remote_outcome(door: FrontDoor, tmp_path: Path) -> None:
    """afterok on a FAILED fed job never runs; afterok on a COMPLETED fed job runs."""
    failed = door.submit("-p", "fed", "-o", "out-%j.txt", door.script("fail.sh", "exit 3\n"))
    completed = door.submit("-p", "fed", "-o", "out-%j.txt", door.script("ok.sh", "true\n"))
    dependent = door.script("dep.sh", "echo dependent-ran\n")
    never = door.submit(
        f"--dependency=afterok:{failed}", "-p", "fed", "-o", "out-%j.txt", dependent
    )
    runs = door.submit(
        f"--dependency=afterok:{completed}", "-p", "fed", "-o", "out-%j.txt", dependent
    )
    assert field(door.wait_ended(failed), "JobState") == "FAILED"
    assert field(door.wait_ended(completed), "JobState") == "COMPLETED"
    shown = door.wait_ended(runs)
    assert field(shown, "JobState") == "COMPLETED", shown
    assert "dependent-ran" in (tmp_path / f"out-{runs}.txt").read_text().splitlines()
    shown = door.show(never)  # 22.05 without kill_invalid_depend keeps it pending, never run
    assert (field(shown, "JobState"), field(shown, "Reason")) == (
        "PENDING",
        "DependencyNeverSatisfied",
    ), shown
    assert not (tmp_path / f"out-{never}.txt").exists()
    assert door.federation.jobs_of([never]) == {never: []}


def test_separate_error_file_gets_the_remote_stderr(door: FrontDoor, tmp_path: Path) -> None:
    """With -o and -e apart, the job's stdout and stderr reach their own files at the door."""
    body = "echo to-stdout\necho to-stderr >&2\n"
    job = door.submit(
        "-p", "fed", "-o", "out-%j.txt", "-e", "err-%j.txt", door.script("e.sh", body)
    )
    assert field(door.wait_ended(job), "JobState") == "COMPLETED"
    out = (tmp_path / f"out-{job}.txt").read_text()
    err = (tmp_path / f"err-{job}.txt").read_text()
    assert "to-stdout" in out and "to-stderr" not in out
    assert "to-stderr" in err and "to-stdout" not in err


def test_scancel_cancels_the_remote_job(door: FrontDoor, lab: Lab) -> None:
    """scancel of a running fed job cancels its remote job on the pool and the federation job."""
    job = door.submit("-p", "fed", "--gres=gpu:1", "-o", "out-%j.txt", door.script("s.sh", SLEEP))
    remote = door.wait_comment(job, {"RUNNING"})
    assert remote.pool and remote.remote_id
    checked(lab, DOOR, "scancel", job)
    assert wait_remote(lab, remote.pool, remote.remote_id, timeout=30) == "CANCELLED"
    assert door.federation.wait(remote.fed_id, timeout=30)["state"] == "CANCELLED"
    assert field(door.wait_ended(job, timeout=30), "JobState") == "CANCELLED"


def test_time_limit_ends_the_door_job_timeout_and_cancels_the_remote_job(
    door: FrontDoor, lab: Lab
) -> None:
    """At its --time=1 limit a fed job ends TIMEOUT at the door and its remote job CANCELLED."""
    script = door.script("s.sh", SLEEP)
    job = door.submit("-p", "fed", "--time=1", "--gres=gpu:1", "-o", "out-%j.txt", script)
    remote = door.wait_comment(job, {"RUNNING"})
    assert remote.pool and remote.remote_id
    shown = door.wait_ended(job, timeout=180)  # Slurm enforces limits every 30 s or so
    remote_end = wait_remote(lab, remote.pool, remote.remote_id, timeout=60)
    fed = door.federation.wait(remote.fed_id, timeout=60)
    outcome = (field(shown, "JobState"), remote_end, fed["state"])
    assert outcome == ("TIMEOUT", "CANCELLED", "CANCELLED"), (
        f"door {field(shown, 'JobState')} ExitCode={field(shown, 'ExitCode')}, remote job "
        f"{remote.remote_id} on {remote.pool} {remote_end}, federation job {remote.fed_id} "
        f"{fed['state']} ({fed.get('reason', '')})"
    )


def test_array_tasks_each_run_remotely_with_their_own_task_id(
    door: FrontDoor, tmp_path: Path
) -> None:
    """A 4-task fed array: each out-%A_%a.txt has its own task id as the remote job saw it."""
    script = door.script("task.sh", 'echo "task=$SLURM_ARRAY_TASK_ID on=$SLURM_CLUSTER_NAME"\n')
    array = door.submit("--array=0-3", "-p", "fed", "-o", "out-%A_%a.txt", script)
    for task in range(4):
        shown = door.wait_ended(f"{array}_{task}")
        assert field(shown, "JobState") == "COMPLETED", shown
    for task in range(4):
        lines = (tmp_path / f"out-{array}_{task}.txt").read_text().splitlines()
        seen = [line for line in lines if line.startswith("task=")]
        assert len(seen) == 1 and re.fullmatch(rf"task={task} on=(alpha|beta)", seen[0]), lines


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        pytest.param(
            ["-N", "9", "--gres=gpu:1"],
            NO_POOL + "alpha: only 2 nodes (job needs 9); beta: only 4 nodes (job needs 9)",
            id="9-nodes",
        ),
        pytest.param(
            ["--gres=gpu:16"],
            NO_POOL + "alpha: only 4 GPUs per node (job needs 16); "
            "beta: only 8 GPUs per node (job needs 16)",
            id="16-gpus-per-node",
        ),
        # The door's GresTypes has no fpga: slurmctld refuses it before the shim runs.
        pytest.param(
            ["--gres=fpga:1"],
            "sbatch: error: Invalid generic resource (gres) specification",
            id="fpga",
        ),
    ],
)
def test_impossible_request_is_refused_by_sbatch(
    door: FrontDoor, options: list[str], reason: str
) -> None:
    """An impossible fed request makes sbatch fail with a one-line reason and creates no job."""
    name = door.name("impossible")
    result = door.sbatch("-p", "fed", "-J", name, *options, door.script("s.sh", "true\n"))
    assert result.returncode != 0 and result.stdout == "", result
    assert reason in result.stderr.splitlines(), result.stderr
    assert door.named(name) == []


@pytest.mark.parametrize("command", [["srun", "hostname"], ["salloc"]], ids=["srun", "salloc"])
def test_interactive_job_on_fed_is_refused_at_once(door: FrontDoor, command: list[str]) -> None:
    """srun and salloc on fed fail at once with the shim's batch-only message, creating no job."""
    name = door.name(command[0])
    result = door.run(command[0], "-p", "fed", "-J", name, *command[1:], timeout=30)
    assert result.returncode != 0, result
    assert f"{command[0]}: error: {BATCH_ONLY}" in result.stderr.splitlines(), result.stderr
    assert door.named(name) == []


def nasty_script() -> bytes:
    """UTF-8 and a raw 0xff byte, and a quoted 1 MiB heredoc full of shell syntax."""
    line = b"%07d h\xc3\xa9llo \xe2\x86\x92 \xff $(touch /tmp/pwned-door) `id` 'EOF' \"$0\" \\\n"
    body = b"".join(line % i for i in range((1 << 20) // len(line % 0) + 1))
    assert len(body) >= 1 << 20
    return (
        b"#!/bin/bash\n# w\xc3\xb6rld \xe2\x9c\x93 and a raw byte: \xff\n"
        b'sha256sum "$0"\n'
        b"cat > /dev/null <<'EOF'\n" + body + b"EOF\n"
        b"echo finished\n"
    )


@pytest.mark.parametrize("nodes", ["1", "3"], ids=["1-node", "3-nodes-on-beta-over-ssh"])
def test_script_and_name_arrive_byte_identical_and_run_nothing(
    door: FrontDoor, lab: Lab, tmp_path: Path, nodes: str
) -> None:
    """The remote job's stored script and name equal what was sbatched; no metacharacter ran."""
    for path in PWNED:
        path.unlink(missing_ok=True)
    script = nasty_script()
    digest = hashlib.sha256(script).hexdigest()
    door.script("nasty.sh", script)
    job = door.submit(
        "-p", "fed", "-N", nodes, "--gres=gpu:1", "-J", EVIL_NAME, f"--comment={EVIL_COMMENT}",
        "-o", "out-%j.txt", "nasty.sh",
    )  # fmt: skip
    shown = door.wait_ended(job)
    assert field(shown, "JobState") == "COMPLETED", shown
    [fed_id] = door.federation.jobs_of([job])[job]
    fed = door.federation.show(fed_id)
    pool, remote_id = fed["pool"], fed["remote_id"]
    assert nodes == "1" or pool == "beta", fed
    stored = batch_script(lab, pool, remote_id)
    assert (len(stored), hashlib.sha256(stored).hexdigest()) == (len(script), digest)
    assert job_name(show_job(lab, pool, remote_id)) == EVIL_NAME
    lines = (tmp_path / f"out-{job}.txt").read_text(errors="replace").splitlines()
    assert [line.split()[0] for line in lines if line.endswith("slurm_script")] == [digest], lines
    assert "finished" in lines
    assert [p for p in PWNED if p.exists()] == []


def test_jobs_submitted_while_sfedd_is_down_run_once_when_it_returns(
    door: FrontDoor, lab: Lab, tmp_path: Path
) -> None:
    """Fed jobs sbatched while sfedd is down for 20 s all complete, each run exactly once."""
    lab.sfedd.down()
    try:
        jobs = [
            door.submit("-p", "fed", "-o", "out-%j.txt", door.script(f"m{i}.sh", f"echo m-{i}\n"))
            for i in range(3)
        ]
        time.sleep(20)  # the outage the proxies must ride out
    finally:
        lab.sfedd.up()
        lab.sfedd.wait()
    for i, job in enumerate(jobs):
        shown = door.wait_ended(job)
        assert field(shown, "JobState") == "COMPLETED", shown
        assert f"m-{i}" in (tmp_path / f"out-{job}.txt").read_text().splitlines()
    fed_ids = door.federation.jobs_of(jobs)
    assert all(len(ids) == 1 for ids in fed_ids.values()), fed_ids
    remote = {job: tagged(lab, ids[0]) for job, ids in fed_ids.items()}
    assert all(len(found) == 1 for found in remote.values()), remote
