"""srun's command line, task layout and --export, without pods."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.pools.kubernetes.runtime.conftest import NODES, RUNTIME, TOKEN, free_port

SUPPORTED = (
    "supported: -n/--ntasks, -N/--nodes, --ntasks-per-node, -c/--cpus-per-task, -l/--label, "
    "-K/--kill-on-bad-exit, -u/--unbuffered, -J/--job-name, --export, --mpi=none"
)


@pytest.mark.parametrize(
    "args",
    [
        ["-n4", "hostname"],
        ["-n", "4", "hostname"],
        ["--ntasks=4", "hostname"],
        ["--ntasks", "4", "hostname"],
        ["-ln4", "hostname"],
    ],
)
def test_option_forms_are_equivalent(sfed_pod: ModuleType, args: list[str]) -> None:
    """-n4, -n 4, --ntasks=4, --ntasks 4 and a combined -ln4 all mean four tasks."""
    opts = sfed_pod.parse_srun_args(args)
    assert (opts.ntasks, opts.command) == (4, ["hostname"])


def test_options_end_at_the_command(sfed_pod: ModuleType) -> None:
    """The first non-option word starts the command; its own options are left alone."""
    opts = sfed_pod.parse_srun_args(["-l", "python", "-n", "1", "--pty"])
    assert (opts.label, opts.ntasks, opts.command) == (True, None, ["python", "-n", "1", "--pty"])


def test_double_dash_ends_the_options(sfed_pod: ModuleType) -> None:
    """After "--", even a word starting with "-" is the command."""
    opts = sfed_pod.parse_srun_args(["-K", "--", "-weird-cmd"])
    assert (opts.kill_on_bad_exit, opts.command) == (True, ["-weird-cmd"])


def test_every_supported_option_is_parsed(sfed_pod: ModuleType) -> None:
    """The whole supported set in one command line lands in the options."""
    opts = sfed_pod.parse_srun_args(
        [
            "-N",
            "2",
            "--ntasks-per-node=2",
            "-c",
            "3",
            "-l",
            "-K",
            "-u",
            "-J",
            "step",
            "--export=NONE,A=1",
            "--mpi=none",
            "env",
        ]
    )
    got: dict[str, Any] = vars(opts)
    assert got == {
        "ntasks": None,
        "nodes": 2,
        "ntasks_per_node": 2,
        "cpus_per_task": 3,
        "label": True,
        "kill_on_bad_exit": True,
        "job_name": "step",
        "export": "NONE,A=1",
        "command": ["env"],
    }


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--pty", "bash"], "--pty"),
        (["--gpus-per-task=1", "x"], "--gpus-per-task"),
        (["--exclusive", "x"], "--exclusive"),
        (["-w", "n1", "x"], "-w"),
        (["--mem", "4G", "x"], "--mem"),
        (["--mpi=pmix", "x"], "--mpi=pmix"),
        (["--multi-prog", "conf"], "--multi-prog"),
    ],
)
def test_unsupported_options_are_named(sfed_pod: ModuleType, args: list[str], option: str) -> None:
    """Every option outside the supported set is refused with its name and the supported list."""
    with pytest.raises(sfed_pod.UsageError) as caught:
        sfed_pod.parse_srun_args(args)
    assert str(caught.value) == (
        f"option {option} is not supported on Kubernetes pools (sfed); {SUPPORTED}"
    )


@pytest.mark.parametrize("args", [[], ["-n", "2"], ["-n", "0", "x"], ["-n", "many", "x"], ["-n"]])
def test_bad_command_lines_are_refused(sfed_pod: ModuleType, args: list[str]) -> None:
    """No command, a missing value or a non-positive count is a usage error."""
    with pytest.raises(sfed_pod.UsageError):
        sfed_pod.parse_srun_args(args)


def plan(sfed_pod: ModuleType, args: str, alloc: int = 2, **env: str) -> list[int]:
    return list(sfed_pod.plan_tasks(sfed_pod.parse_srun_args([*args.split(), "x"]), alloc, env))


@pytest.mark.parametrize(
    ("args", "env", "counts"),
    [
        ("-n 6", {}, [2, 2, 1, 1]),
        ("-n 1", {}, [1]),
        ("-N 4 -n 5", {}, [2, 1, 1, 1]),
        ("-N 2 --ntasks-per-node 3", {}, [3, 3]),
        ("-N 1", {"SLURM_NTASKS": "3"}, [3]),
        ("-l", {"SLURM_NTASKS": "4", "SLURM_NNODES": "2"}, [2, 2]),
        ("-l", {}, [1, 1, 1, 1]),
    ],
)
def test_block_distribution(
    sfed_pod: ModuleType, args: str, env: dict[str, str], counts: list[int]
) -> None:
    """Tasks per node like Slurm's block layout; defaults from SLURM_NTASKS or the node count."""
    assert plan(sfed_pod, args, 4, **env) == counts


@pytest.mark.parametrize("args", ["-N 3", "-N 2 -n 1", "-N 2 -n 5 --ntasks-per-node 2"])
def test_impossible_layouts_are_refused(sfed_pod: ModuleType, args: str) -> None:
    """More nodes than allocated, fewer tasks than nodes, or too many tasks per node."""
    with pytest.raises(sfed_pod.UsageError):
        plan(sfed_pod, args)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("ALL", {"HOME": "/h", "SLURM_JOB_ID": "7", "X": "1"}),
        ("NONE", {"SLURM_JOB_ID": "7"}),
        ("X,Y=2", {"SLURM_JOB_ID": "7", "X": "1", "Y": "2"}),
        ("ALL,X=9", {"HOME": "/h", "SLURM_JOB_ID": "7", "X": "9"}),
    ],
)
def test_export(sfed_pod: ModuleType, spec: str, expected: dict[str, str]) -> None:
    """--export: ALL keeps everything; NONE and lists keep SLURM_* plus what they name."""
    env = {"HOME": "/h", "SLURM_JOB_ID": "7", "X": "1"}
    assert sfed_pod.export_env(spec, env) == expected


def srun(tmp_path: Path, *args: str, port: int | None = None) -> subprocess.CompletedProcess[str]:
    """Runs the srun shim as in a pod whose agents (at `port`) are not running."""
    (tmp_path / "token").write_text(TOKEN)
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONDONTWRITEBYTECODE": "1",
        "SFED_NODES": ",".join(NODES),
        "SFED_AGENT_PORT": str(port or free_port()),
        "SFED_DIR": str(tmp_path),
    }
    return subprocess.run(
        [sys.executable, str(RUNTIME / "srun"), *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


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
