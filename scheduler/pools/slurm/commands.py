"""Argv of the Slurm client commands the adapter runs. Pure: no I/O, no shell.

Every user-chosen value (job name, paths) travels as one argv word of the `--option=value`
form, so that it can neither start a new option nor be split; the transports never hand argv to
a local shell and quote every word for a remote one. The job's environment is not on the
command line: it goes to sbatch's own environment (`--export=ALL`), see `job_environment`.

The read commands carry no filters on purpose: Slurm 22.05's `sinfo --json` and
`squeue --json` ignore `--partition`, `--jobs` and `--states` and always return every node and
every job the controller remembers (see parse.py), so the adapter filters on its side.
`--states=all` is kept on squeue so that a later Slurm that honours filters still reports
finished jobs; `--jobs` is never used because `squeue --jobs=<purged id>` fails as a whole in
the non-JSON form.
"""

from __future__ import annotations

import re

from scheduler.domain import RemoteSubmission
from scheduler.pools.slurm.transport import ENV_NAME

__all__ = [
    "JOB_ID",
    "SBATCH_CLIENT_ONLY_VARIABLES",
    "check_job_id",
    "job_environment",
    "sbatch_argv",
    "scancel_argv",
    "scontrol_show_job_argv",
    "scontrol_write_batch_script_argv",
    "sinfo_argv",
    "squeue_argv",
]

#: A Slurm job id as sbatch --parsable prints it, or an array task (`123_4`).
JOB_ID = re.compile(r"[0-9]+(?:_[0-9]+)?")

#: Variables that steer the sbatch client (or the dynamic loader running it) rather than the
#: job: passed through, they would let a job's environment pick another cluster or account,
#: override the options built here, or load code into the federation's own sbatch process.
#: They are not forwarded. (sbatch's input variables: `man sbatch`, INPUT ENVIRONMENT.)
SBATCH_CLIENT_ONLY_VARIABLES = re.compile(
    r"SBATCH_.*|SLURM_CONF|SLURM_CLUSTERS|SLURM_DEBUG_FLAGS|SLURM_EXIT_ERROR"
    r"|LD_.*|GCONV_PATH|GETCONF_DIR|HOSTALIASES|LOCALDOMAIN|LOCPATH|MALLOC_.*|NLSPATH"
    r"|RESOLV_HOST_CONF|RES_OPTIONS"
)


def job_environment(submission: RemoteSubmission) -> tuple[dict[str, str], list[str]]:
    """The variables to export into the job, and the names left out: those that would steer
    sbatch itself and those no environment can hold (`=` or NUL in the name, NUL in the value).
    The submission's own variables (SFED_*) win over the request's."""
    merged = {**submission.request.environment, **submission.environment}
    kept = {
        k: v
        for k, v in merged.items()
        if ENV_NAME.fullmatch(k) and "\0" not in v and not SBATCH_CLIENT_ONLY_VARIABLES.fullmatch(k)
    }
    dropped = sorted(set(merged) - set(kept))
    return kept, dropped


def _positive(name: str, value: int) -> int:
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {value}")
    return value


def sbatch_argv(submission: RemoteSubmission, partition: str) -> list[str]:
    """`sbatch --parsable ...` for the submission on `partition`; the script goes on stdin."""
    request = submission.request
    argv = [
        "sbatch",
        "--parsable",
        f"--comment={submission.tag.render()}",
        f"--job-name={request.job_name}",
        f"--nodes={_positive('nodes', request.nodes)}",
        f"--ntasks={_positive('ntasks', request.tasks)}",
        f"--cpus-per-task={_positive('cpus_per_task', request.cpus_per_task)}",
    ]
    if request.gpus_per_node < 0:
        raise ValueError(f"gpus_per_node must not be negative, not {request.gpus_per_node}")
    if request.gpus_per_node:
        argv.append(f"--gres=gpu:{request.gpus_per_node}")
    if request.mem_per_node_mb is not None:
        argv.append(f"--mem={_positive('mem_per_node_mb', request.mem_per_node_mb)}M")
    if request.time_limit_min is not None:
        argv.append(f"--time={_positive('time_limit_min', request.time_limit_min)}")
    argv.append(f"--partition={partition}")
    if request.chdir is not None:
        argv.append(f"--chdir={request.chdir}")
    if request.output is not None:
        argv.append(f"--output={request.output}")
    if request.error is not None:
        argv.append(f"--error={request.error}")
    argv.append("--requeue" if request.requeue else "--no-requeue")
    argv.append("--export=ALL")
    for word in argv:
        if "\0" in word:
            raise ValueError(f"sbatch argument contains a NUL byte: {word!r}")
    return argv


def sinfo_argv() -> list[str]:
    """Every node of the cluster with its partitions, GRES and allocations (JSON)."""
    return ["sinfo", "--json"]


def squeue_argv() -> list[str]:
    """Every job the controller remembers, finished ones included (JSON)."""
    return ["squeue", "--json", "--states=all"]


def check_job_id(remote_id: str) -> str:
    """`remote_id` when it is a Slurm job id, else ValueError (it would not be one argv word)."""
    if not JOB_ID.fullmatch(remote_id):
        raise ValueError(f"not a Slurm job id: {remote_id!r}")
    return remote_id


def scancel_argv(remote_id: str) -> list[str]:
    """`scancel <id>`: 22.05 exits 0 for unknown and finished ids."""
    return ["scancel", check_job_id(remote_id)]


def scontrol_show_job_argv(remote_id: str) -> list[str]:
    """`scontrol -o show job <id>`: one key=value line (local times, no JSON in 22.05)."""
    return ["scontrol", "-o", "show", "job", check_job_id(remote_id)]


def scontrol_write_batch_script_argv(remote_id: str) -> list[str]:
    """The batch script slurmctld stored for the job, byte for byte, on stdout."""
    return ["scontrol", "write", "batch_script", check_job_id(remote_id), "-"]
