"""Where an srun step's tasks run and the environment each one gets.

Tasks are laid out block-wise like Slurm: node k of the step gets ntasks // nnodes tasks, the
first ntasks % nnodes nodes one more; a step uses the first nnodes pods of the job.
Tasks get srun's environment (after --export) plus SLURM_PROCID, SLURM_LOCALID, SLURM_NODEID,
SLURMD_NODENAME, SLURM_STEP_ID/SLURM_STEPID, SLURM_STEP_NUM_TASKS/SLURM_NTASKS/SLURM_NPROCS,
SLURM_STEP_NUM_NODES/SLURM_NNODES, SLURM_STEP_NODELIST/SLURM_NODELIST,
SLURM_STEP_TASKS_PER_NODE/SLURM_TASKS_PER_NODE, SLURM_GTIDS, SLURM_TASK_PID, and the -c/-J values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .hostlist import compress_hostlist
from .srun_options import UsageError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .srun_options import SrunOptions


def plan_tasks(opts: SrunOptions, alloc_nodes: int, env: dict[str, str]) -> list[int]:
    """Tasks per node of the step (its first len() pods), block distribution like Slurm."""
    nodes = opts.nodes
    if nodes is not None and nodes > alloc_nodes:
        raise UsageError(
            f"--nodes={nodes} is more than the {alloc_nodes} node(s) of the job's allocation"
        )
    if opts.ntasks is not None:
        tasks = opts.ntasks
    elif opts.ntasks_per_node is not None:
        tasks = opts.ntasks_per_node * (nodes or alloc_nodes)
    else:
        tasks = _positive_env(env, "SLURM_NTASKS") or nodes or alloc_nodes
    if nodes is None:
        # Without -N Slurm uses the allocation, shrunk to one node per task.
        nodes = min(alloc_nodes, tasks, _positive_env(env, "SLURM_NNODES") or alloc_nodes)
    elif tasks < nodes:
        raise UsageError(f"cannot run {tasks} task(s) on {nodes} nodes: every node needs a task")
    if opts.ntasks_per_node is not None and tasks > opts.ntasks_per_node * nodes:
        raise UsageError(
            f"{tasks} tasks do not fit {nodes} node(s) with --ntasks-per-node="
            f"{opts.ntasks_per_node}"
        )
    base, extra = divmod(tasks, nodes)
    return [base + (1 if k < extra else 0) for k in range(nodes)]


def _positive_env(env: dict[str, str], name: str) -> int | None:
    try:
        value = int(env.get(name, ""))
    except ValueError:
        return None
    return value if value > 0 else None


def export_env(spec: str, env: dict[str, str]) -> dict[str, str]:
    """The tasks' base environment for --export (Slurm: NONE and VAR lists keep SLURM_*)."""
    items = [item for item in spec.split(",") if item]
    if "ALL" in items:
        result = dict(env)
    else:
        result = {k: v for k, v in env.items() if k.startswith("SLURM_")}
    for item in items:
        if item in ("ALL", "NONE"):
            continue
        name, has_value, value = item.partition("=")
        if has_value:
            result[name] = value
        elif name in env:
            result[name] = env[name]
    return result


def _tasks_per_node_string(counts: Sequence[int]) -> str:
    """Slurm's SLURM_TASKS_PER_NODE form: [2, 2, 1] -> "2(x2),1"."""
    parts: list[str] = []
    i = 0
    while i < len(counts):
        j = i
        while j < len(counts) and counts[j] == counts[i]:
            j += 1
        parts.append(str(counts[i]) if j - i == 1 else f"{counts[i]}(x{j - i})")
        i = j
    return ",".join(parts)


def task_env(
    base: dict[str, str],
    opts: SrunOptions,
    step_id: int,
    nodes: list[str],
    counts: list[int],
) -> list[tuple[int, dict[str, str]]]:
    """(node index, environment) of every task, in procid order."""
    total = sum(counts)
    nodelist = compress_hostlist(nodes)
    per_node = _tasks_per_node_string(counts)
    common = dict(base)
    common.update(
        SLURM_STEP_ID=str(step_id),
        SLURM_STEPID=str(step_id),
        SLURM_STEP_NUM_TASKS=str(total),
        SLURM_NTASKS=str(total),
        SLURM_NPROCS=str(total),
        SLURM_STEP_NUM_NODES=str(len(nodes)),
        SLURM_NNODES=str(len(nodes)),
        SLURM_STEP_NODELIST=nodelist,
        SLURM_NODELIST=nodelist,
        SLURM_STEP_TASKS_PER_NODE=per_node,
        SLURM_TASKS_PER_NODE=per_node,
    )
    if opts.cpus_per_task is not None:
        common["SLURM_CPUS_PER_TASK"] = str(opts.cpus_per_task)
    if opts.job_name is not None:
        common["SLURM_JOB_NAME"] = opts.job_name
    result: list[tuple[int, dict[str, str]]] = []
    procid = 0
    for node_index, count in enumerate(counts):
        gtids = ",".join(str(procid + k) for k in range(count))
        for localid in range(count):
            env = dict(common)
            env.update(
                SLURM_PROCID=str(procid),
                SLURM_LOCALID=str(localid),
                SLURM_NODEID=str(node_index),
                SLURMD_NODENAME=nodes[node_index],
                SLURM_GTIDS=gtids,
            )
            result.append((node_index, env))
            procid += 1
    return result
