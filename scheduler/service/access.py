"""Who may see and do what with a job, as Slurm's security model has it. Pure.

Everybody proven may list jobs and see what `squeue` and `scontrol show job` show; a job's
environment, script and output are its owner's and the admins' only. With
`server.private_data = ["jobs"]` (Slurm's PrivateData=jobs) other users' jobs are hidden
entirely: they are answered as if they did not exist.
"""

from __future__ import annotations

from scheduler.config import ServerConfig
from scheduler.domain import Job
from scheduler.identity import Caller

__all__ = ["is_admin", "may_read_private", "sees"]


def is_admin(caller: Caller, server: ServerConfig) -> bool:
    return caller.user in server.admins


def may_read_private(caller: Caller, job: Job, server: ServerConfig) -> bool:
    """The job's environment, script and output: its owner and the admins."""
    return job.user == caller.user or is_admin(caller, server)


def sees(caller: Caller, job: Job, server: ServerConfig) -> bool:
    """Whether the job exists at all for the caller."""
    return "jobs" not in server.private_data or may_read_private(caller, job, server)
