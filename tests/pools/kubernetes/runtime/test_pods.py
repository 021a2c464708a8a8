"""End to end: pods as real processes run a batch script whose srun steps span both of them."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.pools.kubernetes.runtime.conftest import (
    NODES,
    Job,
    oldest_python,
    process_gone,
    wait_for_files,
)

WHERE = "#!/bin/sh\nsrun -n 4 sh -c 'echo $SLURM_PROCID $SLURMD_NODENAME $SLURM_LOCALID'\n"
EXPECTED_WHERE = [
    f"0 {NODES[0]} 0",
    f"1 {NODES[0]} 1",
    f"2 {NODES[1]} 0",
    f"3 {NODES[1]} 1",
]


def _pythons() -> list[object]:
    old = oldest_python()
    skip = pytest.mark.skip(reason="no Python 3.8 on this machine")
    return [None, pytest.param(old, id="python3.8", marks=() if old else skip)]


@pytest.mark.parametrize("python", _pythons(), ids=["current", "python3.8"])
def test_tasks_run_on_their_nodes_with_their_procid(
    make_job: Callable[..., Job], python: str | None
) -> None:
    """srun -n 4 on 2 pods: tasks 0,1 on node 0 and 2,3 on node 1 (also under Python 3.8)."""
    pod0, _pod1 = make_job(python).run(WHERE)
    assert pod0.rc == 0, pod0.stderr
    assert sorted(pod0.stdout.splitlines()) == EXPECTED_WHERE


def test_label_prefixes_each_line_with_the_procid(job: Job) -> None:
    """srun -l prefixes every output line with "<procid>: "."""
    pod0, _ = job.run("#!/bin/sh\nsrun -l -n 2 printf 'a\\nb\\n'\n")
    assert sorted(pod0.stdout.splitlines()) == ["0: a", "0: b", "1: a", "1: b"]


def test_task_stderr_goes_to_srun_stderr(job: Job) -> None:
    """A task's stderr reaches the script's stderr, not its stdout."""
    pod0, _ = job.run("#!/bin/sh\nsrun -N 2 sh -c 'echo oops-$SLURM_PROCID >&2'\n")
    assert sorted(pod0.stderr.split()) == ["oops-0", "oops-1"]
    assert pod0.stdout == ""


def test_failing_task_exit_code_reaches_the_script(job: Job) -> None:
    """srun returns the highest task exit code, and says which task failed."""
    pod0, _ = job.run(
        "#!/bin/sh\nsrun -n 2 sh -c 'exit $((SLURM_PROCID + 3))'\necho rc=$?\nsrun false\necho rc=$?\n"
    )
    assert pod0.stdout.splitlines() == ["rc=4", "rc=1"]
    assert f"srun: error: {NODES[1]}: task 1: Exited with exit code 4" in pod0.stderr


def test_pod0_exits_with_script_status_and_workers_exit_0(job: Job) -> None:
    """Pod 0 ends with the script's exit status; pod 0's exit request ends the worker with 0."""
    pod0, pod1 = job.run("#!/bin/sh\nexit 7\n")
    assert (pod0.rc, pod1.rc) == (7, 0)


def test_script_killed_by_signal_gives_128_plus_signal(job: Job) -> None:
    """A script that dies of SIGKILL makes pod 0 exit 137, as Slurm reports it."""
    pod0, _ = job.run("#!/bin/sh\nkill -9 $$\n")
    assert pod0.rc == 137


def test_task_environment_describes_the_step(job: Job) -> None:
    """Tasks see the step's size, nodelist, step id, -c and -J values."""
    pod0, _ = job.run(
        "#!/bin/sh\nsrun -n 3 -c 2 -J named sh -c 'echo $SLURM_PROCID $SLURM_STEP_NUM_TASKS "
        "$SLURM_STEP_NUM_NODES $SLURM_STEP_NODELIST $SLURM_CPUS_PER_TASK $SLURM_JOB_NAME "
        "$SLURM_STEP_ID $SLURM_JOB_ID'\n"
    )
    rest = "3 2 127.0.0.[2-3] 2 named 0 7"
    assert sorted(pod0.stdout.splitlines()) == [f"{i} {rest}" for i in range(3)]


def test_each_srun_gets_the_next_step_id(job: Job) -> None:
    """Consecutive srun steps of one script are numbered 0, 1, ..."""
    pod0, _ = job.run("#!/bin/sh\nfor i in 1 2 3; do srun -n 1 printenv SLURM_STEP_ID; done\n")
    assert pod0.stdout.split() == ["0", "1", "2"]


def test_batch_script_environment(job: Job) -> None:
    """The script runs in SFED_CHDIR with SLURM_PROCID=0, its own SLURM_TASK_PID and the shims."""
    pod0, _ = job.run(
        '#!/bin/sh\necho "$(pwd) $SLURM_PROCID $SLURM_NODEID $((SLURM_TASK_PID == $$))"\n'
        "command -v srun; command -v scontrol\n"
    )
    lines = pod0.stdout.splitlines()
    assert lines[0] == f"{job.workdir} 0 0 1"
    assert lines[1:] == [str(job.sfed_dir / "bin" / name) for name in ("srun", "scontrol")]


def test_missing_chdir_warns_and_uses_tmp(job: Job) -> None:
    """A SFED_CHDIR that does not exist: a warning, and the script runs in /tmp like slurmd's."""
    pod0, _ = job.run("#!/bin/sh\npwd\n", SFED_CHDIR="/nonexistent/dir")
    assert pod0.stdout == "/tmp\n"
    assert "couldn't chdir to `/nonexistent/dir' (SFED_CHDIR)" in pod0.stderr


def test_stdout_file_gets_stdout_and_stderr(job: Job, tmp_path: Path) -> None:
    """SFED_STDOUT alone receives both streams; the pod log still gets stdout."""
    out = tmp_path / "slurm-7.out"
    out.write_text("earlier\n")
    pod0, _ = job.run("#!/bin/sh\necho to-out\nsleep 0.2\necho to-err >&2\n", SFED_STDOUT=str(out))
    assert out.read_text() == "earlier\nto-out\nto-err\n"
    assert (pod0.stdout, pod0.stderr) == ("to-out\n", "to-err\n")


def test_stderr_file_gets_only_stderr(job: Job, tmp_path: Path) -> None:
    """With SFED_STDERR too, each file gets its own stream."""
    out, err = tmp_path / "o", tmp_path / "e"
    job.run("#!/bin/sh\necho to-out\necho to-err >&2\n", SFED_STDOUT=str(out), SFED_STDERR=str(err))
    assert (out.read_text(), err.read_text()) == ("to-out\n", "to-err\n")


def test_unopenable_output_file_warns_and_runs(job: Job) -> None:
    """An output file that cannot be opened: a warning, the script still runs."""
    pod0, _ = job.run("#!/bin/sh\necho ran\n", SFED_STDOUT="/nonexistent/dir/out")
    assert (pod0.rc, pod0.stdout) == (0, "ran\n")
    assert "cannot open /nonexistent/dir/out (SFED_STDOUT)" in pod0.stderr


def test_non_utf8_script_runs_byte_identical(job: Job) -> None:
    """A script with non-UTF-8 bytes runs unchanged: it prints itself byte for byte."""
    script = b'#!/bin/sh\n# caf\xe9 \xff\xfe\ncat "$0"\nprintf "\\377\\000\\n"\n'
    pod0, _ = job.run(script)
    assert pod0.out == script + b"\xff\x00\n"


def test_non_utf8_task_arguments_arrive_unchanged(job: Job) -> None:
    """Arguments srun passes on keep their exact bytes, even when they are not UTF-8."""
    pod0, _ = job.run(b"#!/bin/sh\nsrun -N 2 printf '%s\\n' caf\xe9\n")
    assert pod0.out == b"caf\xe9\ncaf\xe9\n"


def test_script_without_shebang_runs_with_sh(job: Job) -> None:
    """A script without "#!" is run by /bin/sh."""
    pod0, _ = job.run("echo via-sh\n")
    assert (pod0.rc, pod0.stdout) == (0, "via-sh\n")


def test_kill_on_bad_exit_stops_the_other_tasks(job: Job) -> None:
    """srun -K: one task failing terminates the others, and srun returns the failure's code."""
    pod0, _ = job.run(
        "#!/bin/sh\nsrun -K -n 2 sh -c '[ $SLURM_PROCID = 1 ] && exit 3; exec sleep 60'\n"
        "echo rc=$?\n"
    )
    assert pod0.stdout == "rc=3\n"
    assert "--kill-on-bad-exit" in pod0.stderr


def test_scontrol_in_a_script_expands_the_job_nodelist(job: Job) -> None:
    """The common MASTER_ADDR idiom works in a batch script."""
    pod0, _ = job.run(
        '#!/bin/sh\nMASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)\n'
        "echo $MASTER_ADDR\n",
        SLURM_JOB_NODELIST="127.0.0.[2-3]",
    )
    assert pod0.stdout == "127.0.0.2\n"


def test_unsupported_option_in_a_script_fails_the_step(job: Job) -> None:
    """srun --pty in a script: the message reaches the job's stderr and srun returns 1."""
    pod0, _ = job.run("#!/bin/sh\nsrun --pty bash\necho rc=$?\n")
    assert pod0.stdout == "rc=1\n"
    assert "srun: error: option --pty is not supported on Kubernetes pools (sfed)" in pod0.stderr


def test_pod0_gives_up_when_a_peer_never_answers(job: Job) -> None:
    """Without pod 1, pod 0 exits 1 after SFED_STARTUP_TIMEOUT_S naming the silent node."""
    pod0 = job.start(0, SFED_STARTUP_TIMEOUT_S="2").finish()
    assert pod0.rc == 1
    assert f"the agent of node {NODES[1]} (index 1) did not answer" in pod0.stderr
    assert "SFED_STARTUP_TIMEOUT_S" in pod0.stderr


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


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SFED_NODES", None), ("JOB_COMPLETION_INDEX", "5"), ("SFED_AGENT_PORT", "http")],
)
def test_broken_contract_exits_1_naming_the_variable(
    job: Job, variable: str, value: str | None
) -> None:
    """A missing or invalid contract variable: exit 1 with a message that names it."""
    env = job.env(0)
    if value is None:
        del env[variable]
    else:
        env[variable] = value
    pod = job.start(0, env=env).finish()
    assert pod.rc == 1
    assert variable in pod.stderr and pod.stderr.startswith("sfed: error: ")
