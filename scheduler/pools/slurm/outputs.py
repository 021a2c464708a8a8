"""Where a job's output goes on a Slurm pool, and so where sfedd reads it back. Pure."""

from __future__ import annotations

import posixpath

from scheduler.domain import Job, OutputPaths
from scheduler.pathmap import PathMap
from scheduler.sbatch_options import expand_filename_pattern

__all__ = ["remote_output_paths", "spool_dir_of", "spool_paths"]


def _expand(pattern: str, job: Job, remote_id: str | None) -> str | None:
    """sbatch's filename pattern for the fields sfedd knows; None when it cannot tell."""
    values = {"j": remote_id, "x": job.request.job_name, "u": job.user, "%": "%"}
    expanded, complete = expand_filename_pattern(pattern, values)
    return expanded if complete else None


def remote_output_paths(
    job: Job,
    attempt: int,
    remote_id: str | None,
    *,
    federation: str,
    spool_dir: str | None,
    path_map: PathMap,
) -> OutputPaths:
    """A job that names no output file writes to the pool's spool dir (when configured),
    under a name of sfedd's; otherwise the user's paths, mapped and expanded."""
    request = job.request
    chdir = path_map.translate(request.chdir) if request.chdir else None

    def resolve(pattern: str | None) -> str | None:
        if pattern is None:
            return None
        path = _expand(path_map.translate(pattern), job, remote_id)
        if path is not None and not path.startswith("/"):
            path = posixpath.join(chdir, path) if chdir else None
        return path

    spooled = spool_paths(spool_dir, job.user, federation, job.id, attempt) if spool_dir else None
    if request.output is None and spooled:
        stdout: str | None = spooled.stdout
    elif request.output is None:
        stdout = resolve("slurm-%j.out")  # sbatch's default
    else:
        stdout = resolve(request.output)
    if request.separate_error and spooled:
        stderr: str | None = spooled.stderr
    else:
        stderr = resolve(request.error)
    return OutputPaths(stdout=stdout, stderr=stderr)


def spool_dir_of(spool_dir: str, owner: str) -> str:
    """The owner's own directory in the pool's spool (mode 0700, the owner's): no other user
    of the pool can read what a job spooled there."""
    return f"{spool_dir.rstrip('/')}/{owner}"


def spool_paths(
    spool_dir: str, owner: str, federation: str, job_id: int, attempt: int
) -> OutputPaths:
    """sfedd's own names for an attempt's output in its owner's spool directory."""
    stem = f"{spool_dir_of(spool_dir, owner)}/{federation}-{job_id}-{attempt}"
    return OutputPaths(stdout=f"{stem}.out", stderr=f"{stem}.err")
