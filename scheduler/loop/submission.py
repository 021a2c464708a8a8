"""What a pool is asked to run for one attempt of a job. Pure.

The unchanged script and request, with the user's paths translated by the pool's path map,
the SFED_* environment, and the account to run as. Where output goes when the user named no
file is the pool's own business (its adapter spools it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import replace

from scheduler.config import FederationConfig, PoolConfig
from scheduler.domain import Job, RemoteSubmission, RemoteTag
from scheduler.pathmap import PathMap

__all__ = ["environment_note", "remote_submission", "sfed_environment"]


def sfed_environment(
    job: Job, attempt: int, pool: str, federation: FederationConfig, paths: PathMap
) -> dict[str, str]:
    """The SFED_* variables every attempt sees: who it is, where, and its checkpoint dir."""
    env = {
        "SFED_JOB_ID": str(job.id),
        "SFED_ATTEMPT": str(attempt),
        "SFED_POOL": pool,
        "SFED_FEDERATION": federation.name,
    }
    root = federation.checkpoint_root
    if root:
        env["SFED_CHECKPOINT_DIR"] = paths.translate(f"{root.rstrip('/')}/{job.id}")
    return env


def remote_submission(
    job: Job, attempt: int, pool: PoolConfig, federation: FederationConfig
) -> RemoteSubmission:
    """Attempt `attempt` of `job` as `pool` must receive it."""
    req, paths = job.request, PathMap(pool.path_prefixes())
    mapped = replace(
        req,
        chdir=paths.translate(req.chdir) if req.chdir else None,
        submit_dir=paths.translate(req.submit_dir) if req.submit_dir else None,
        output=paths.translate(req.output) if req.output else None,
        error=paths.translate(req.error) if req.error else None,
    )
    return RemoteSubmission(
        tag=RemoteTag(federation.name, job.id, attempt),
        request=mapped,
        environment=sfed_environment(job, attempt, pool.name, federation, paths),
        run_as=job.user if pool.runs_as_owner() else None,
        owner=job.user,
    )


def environment_note(pool: str, left_out: Mapping[str, str]) -> str:
    """One line for the job's owner: which variables `pool` left out of the job's
    environment (Pool.environment_left_out), grouped by why."""
    by_why: dict[str, list[str]] = defaultdict(list)
    for name, why in left_out.items():
        by_why[why].append(name)
    parts = [f"{', '.join(names)} ({why})" for why, names in by_why.items()]
    return f"left out of the job's environment on {pool}: " + "; ".join(parts)
