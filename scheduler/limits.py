"""The bounds of a job request: one table for the API, the CLI and the front door's shim.

Each bound is Slurm's own where Slurm has one, or the kernel's where a bigger value could not
reach a process anyway; every refusal names the bound. The capabilities file carries them to
the job_submit shim, so the front door refuses at sbatch time what the API would refuse.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "LIMITS",
    "MAX_CLIENT_KEY",
    "MAX_CONSTRAINT",
    "MAX_CPUS_PER_TASK",
    "MAX_ENV_BYTES",
    "MAX_ENV_ENTRY_BYTES",
    "MAX_ENV_NAME",
    "MAX_ENV_VARS",
    "MAX_GPUS_PER_NODE",
    "MAX_GPU_TYPE",
    "MAX_JOB_NAME",
    "MAX_MEM_PER_NODE_MB",
    "MAX_NODES",
    "MAX_PATH",
    "MAX_PRIORITY",
    "MAX_SCRIPT_BYTES",
    "MAX_TASKS",
    "MAX_TIME_LIMIT_MIN",
]

MAX_SCRIPT_BYTES: Final = 4 * 1024 * 1024  # Slurm's default max_script_size
MAX_NODES: Final = 100_000
MAX_TASKS: Final = 10_000_000
MAX_CPUS_PER_TASK: Final = 65_533  # Slurm keeps it in 16 bits, below its NO_VAL16
MAX_GPUS_PER_NODE: Final = 1_024
MAX_MEM_PER_NODE_MB: Final = 1 << 30  # 1 PiB
MAX_TIME_LIMIT_MIN: Final = 100 * 365 * 24 * 60  # 100 years; Slurm reads larger as INFINITE
MAX_PRIORITY: Final = 1_000_000  # either way
MAX_JOB_NAME: Final = 200
MAX_PATH: Final = 4096  # Linux PATH_MAX
MAX_CLIENT_KEY: Final = 200
MAX_GPU_TYPE: Final = 64  # a GPU type's name (--gres=gpu:TYPE:N)
MAX_CONSTRAINT: Final = 1024  # -C/--constraint, the whole expression
MAX_ENV_VARS: Final = 4096
MAX_ENV_NAME: Final = 256
# Linux's MAX_ARG_STRLEN (128 KiB) less the NUL: a longer NAME=value cannot be passed to
# any process (execve fails with "Argument list too long").
MAX_ENV_ENTRY_BYTES: Final = 128 * 1024 - 1
MAX_ENV_BYTES: Final = 1024 * 1024  # the whole environment, half of Linux's ARG_MAX

# For the capabilities file (and so the shim): name -> bound.
LIMITS: Final[dict[str, int]] = {
    "max_script_bytes": MAX_SCRIPT_BYTES,
    "max_nodes": MAX_NODES,
    "max_tasks": MAX_TASKS,
    "max_cpus_per_task": MAX_CPUS_PER_TASK,
    "max_gpus_per_node": MAX_GPUS_PER_NODE,
    "max_mem_per_node_mb": MAX_MEM_PER_NODE_MB,
    "max_time_limit_min": MAX_TIME_LIMIT_MIN,
    "max_job_name": MAX_JOB_NAME,
    "max_path": MAX_PATH,
    "max_gpu_type": MAX_GPU_TYPE,
    "max_constraint": MAX_CONSTRAINT,
}
