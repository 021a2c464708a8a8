"""srun_layout.py: where a step's tasks run and the environment each gets, without pods."""

from __future__ import annotations

from types import ModuleType

import pytest


def plan(
    srun_layout: ModuleType, srun_options: ModuleType, args: str, alloc: int = 2, **env: str
) -> list[int]:
    opts = srun_options.parse_srun_args([*args.split(), "x"])
    return list(srun_layout.plan_tasks(opts, alloc, env))


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
    srun_layout: ModuleType,
    srun_options: ModuleType,
    args: str,
    env: dict[str, str],
    counts: list[int],
) -> None:
    """Tasks per node like Slurm's block layout; defaults from SLURM_NTASKS or the node count."""
    assert plan(srun_layout, srun_options, args, 4, **env) == counts


@pytest.mark.parametrize("args", ["-N 3", "-N 2 -n 1", "-N 2 -n 5 --ntasks-per-node 2"])
def test_impossible_layouts_are_refused(
    srun_layout: ModuleType, srun_options: ModuleType, args: str
) -> None:
    """More nodes than allocated, fewer tasks than nodes, or too many tasks per node."""
    with pytest.raises(srun_options.UsageError):
        plan(srun_layout, srun_options, args)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("ALL", {"HOME": "/h", "SLURM_JOB_ID": "7", "X": "1"}),
        ("NONE", {"SLURM_JOB_ID": "7"}),
        ("X,Y=2", {"SLURM_JOB_ID": "7", "X": "1", "Y": "2"}),
        ("ALL,X=9", {"HOME": "/h", "SLURM_JOB_ID": "7", "X": "9"}),
    ],
)
def test_export(srun_layout: ModuleType, spec: str, expected: dict[str, str]) -> None:
    """--export: ALL keeps everything; NONE and lists keep SLURM_* plus what they name."""
    env = {"HOME": "/h", "SLURM_JOB_ID": "7", "X": "1"}
    assert srun_layout.export_env(spec, env) == expected


def test_task_env_numbers_the_tasks_block_wise(
    srun_layout: ModuleType, srun_options: ModuleType
) -> None:
    """Each task gets its node, its procid, local and node ids, and its node's task ids."""
    opts = srun_options.parse_srun_args(["x"])
    tasks = srun_layout.task_env({}, opts, 0, ["n1", "n2"], [2, 1])
    keys = ("SLURM_PROCID", "SLURM_LOCALID", "SLURM_NODEID", "SLURMD_NODENAME", "SLURM_GTIDS")
    got = [(node, *(env[key] for key in keys)) for node, env in tasks]
    assert got == [
        (0, "0", "0", "0", "n1", "0,1"),
        (0, "1", "1", "0", "n1", "0,1"),
        (1, "2", "0", "1", "n2", "2"),
    ]


def test_task_env_describes_the_step(srun_layout: ModuleType, srun_options: ModuleType) -> None:
    """Every task sees the step's id, size, nodelist, tasks per node, -c and -J, over its base."""
    opts = srun_options.parse_srun_args(["-c", "4", "-J", "named", "x"])
    (_, env), *_ = srun_layout.task_env({"A": "1"}, opts, 3, ["n1", "n2", "n3"], [2, 2, 1])
    per_task = ("SLURM_PROCID", "SLURM_LOCALID", "SLURM_NODEID", "SLURMD_NODENAME")
    assert {k: v for k, v in env.items() if k not in per_task} == {
        "A": "1",
        "SLURM_STEP_ID": "3",
        "SLURM_STEPID": "3",
        "SLURM_STEP_NUM_TASKS": "5",
        "SLURM_NTASKS": "5",
        "SLURM_NPROCS": "5",
        "SLURM_STEP_NUM_NODES": "3",
        "SLURM_NNODES": "3",
        "SLURM_STEP_NODELIST": "n[1-3]",
        "SLURM_NODELIST": "n[1-3]",
        "SLURM_STEP_TASKS_PER_NODE": "2(x2),1",
        "SLURM_TASKS_PER_NODE": "2(x2),1",
        "SLURM_GTIDS": "0,1",
        "SLURM_CPUS_PER_TASK": "4",
        "SLURM_JOB_NAME": "named",
    }
