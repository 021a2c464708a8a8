"""srun.py: steps of a batch script across the pods, and the srun shim on its own."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.pools.kubernetes.runtime.conftest import (
    NODES,
    SUPPORTED,
    TOKEN,
    Job,
    free_port,
    oldest_python,
    run_shim,
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


FAILING = (
    "#!/bin/sh\nsrun -n 2 sh -c 'exit $((SLURM_PROCID + 3))'\necho rc=$?\nsrun false\necho rc=$?\n"
)


def test_failing_task_exit_code_reaches_the_script(job: Job) -> None:
    """srun returns the highest task exit code."""
    pod0, _ = job.run(FAILING)
    assert pod0.stdout.splitlines() == ["rc=4", "rc=1"]


def test_failing_task_is_named(job: Job) -> None:
    """srun says which task on which node failed, and how."""
    pod0, _ = job.run(FAILING)
    assert f"srun: error: {NODES[1]}: task 1: Exited with exit code 4" in pod0.stderr


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


def test_non_utf8_task_arguments_arrive_unchanged(job: Job) -> None:
    """Arguments srun passes on keep their exact bytes, even when they are not UTF-8."""
    pod0, _ = job.run(b"#!/bin/sh\nsrun -N 2 printf '%s\\n' caf\xe9\n")
    assert pod0.out == b"caf\xe9\ncaf\xe9\n"


def test_kill_on_bad_exit_stops_the_other_tasks(job: Job) -> None:
    """srun -K: one task failing terminates the others, and srun returns the failure's code."""
    pod0, _ = job.run(
        "#!/bin/sh\nsrun -K -n 2 sh -c '[ $SLURM_PROCID = 1 ] && exit 3; exec sleep 60'\n"
        "echo rc=$?\n"
    )
    assert pod0.stdout == "rc=3\n"
    assert "--kill-on-bad-exit" in pod0.stderr


def test_unsupported_option_in_a_script_fails_the_step(job: Job) -> None:
    """srun --pty in a script: the message reaches the job's stderr and srun returns 1."""
    pod0, _ = job.run("#!/bin/sh\nsrun --pty bash\necho rc=$?\n")
    assert pod0.stdout == "rc=1\n"
    assert "srun: error: option --pty is not supported on Kubernetes pools (sfed)" in pod0.stderr


def srun(tmp_path: Path, *args: str, port: int | None = None) -> subprocess.CompletedProcess[str]:
    """Runs the srun shim as in a pod whose agents (at `port`) are not running."""
    (tmp_path / "token").write_text(TOKEN)
    env = {
        "SFED_NODES": ",".join(NODES),
        "SFED_AGENT_PORT": str(port or free_port()),
        "SFED_DIR": str(tmp_path),
    }
    return run_shim("srun", *args, env=env)


def test_srun_shim_rejects_an_unsupported_option(tmp_path: Path) -> None:
    """srun --pty exits 1 with exactly one clear line on stderr."""
    result = srun(tmp_path, "--pty", "bash")
    assert result.returncode == 1
    assert result.stderr == (
        f"srun: error: option --pty is not supported on Kubernetes pools (sfed); {SUPPORTED}\n"
    )


def test_srun_without_a_command_fails(tmp_path: Path) -> None:
    """srun with options only is an error."""
    result = srun(tmp_path, "-n", "2")
    assert (result.returncode, result.stderr) == (1, "srun: error: no command to run was given\n")


def test_srun_reports_an_unreachable_agent(tmp_path: Path) -> None:
    """A node whose agent does not answer: srun: error naming the node, exit 1."""
    result = srun(tmp_path, "-n", "1", "true")
    assert result.returncode == 1
    assert result.stderr.startswith(f"srun: error: cannot start task 0 on node {NODES[0]}")
