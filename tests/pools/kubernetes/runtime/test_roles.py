"""roles.py: pod 0 ends the job with the script's status; the other pods follow it or SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path

from tests.pools.kubernetes.runtime.conftest import Job, process_gone, wait_for_files


def test_pod0_exits_with_the_script_status(job: Job) -> None:
    """Pod 0 ends with the script's exit status."""
    pod0, _ = job.run("#!/bin/sh\nexit 7\n")
    assert pod0.rc == 7


def test_workers_exit_0_when_pod0_is_done(job: Job) -> None:
    """Pod 0's exit request ends the worker with 0, whatever the script's status."""
    _, pod1 = job.run("#!/bin/sh\nexit 7\n")
    assert pod1.rc == 0


def test_sigterm_to_pod0_kills_tasks_on_every_pod(job: Job, tmp_path: Path) -> None:
    """Pod deletion (SIGTERM to pod 0) ends the script and its tasks; nothing is left behind."""
    pids = tmp_path / "pids"
    pids.mkdir()
    job.write_script(
        "#!/bin/sh\nsrun -n 2 sh -c 'echo $$ > \"$PIDS/$SLURM_PROCID\"; exec sleep 300'\n"
    )
    pod0, pod1 = job.start_all(PIDS=str(pids))
    files = [pids / "0", pids / "1"]
    wait_for_files(files)
    pod0.proc.send_signal(signal.SIGTERM)
    assert (pod0.finish().rc, pod1.finish().rc) == (143, 0)
    for f in files:
        assert process_gone(int(f.read_text()), timeout=5.0), f"task {f.name} still runs"


def test_sigterm_to_a_worker_kills_its_tasks(job: Job, tmp_path: Path) -> None:
    """SIGTERM to a worker pod: it kills the tasks it runs and exits 143."""
    pid_file = tmp_path / "pid"
    job.write_script(
        "#!/bin/sh\nsrun -n 2 sh -c '[ $SLURM_PROCID = 1 ] && echo $$ > \"$PID\"; exec sleep 300'\n"
    )
    _pod0, pod1 = job.start_all(PID=str(pid_file))
    wait_for_files([pid_file])
    pod1.proc.send_signal(signal.SIGTERM)
    assert pod1.finish().rc == 143
    assert process_gone(int(pid_file.read_text()), timeout=5.0)
