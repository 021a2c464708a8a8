"""Where a remote job's output goes on its pool, and so where sfedd reads it back. Pure."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from scheduler.domain import Job
from scheduler.pathmap import PathMap
from scheduler.sbatch_options import expand_filename_pattern

__all__ = ["POD_LOG", "OutputPaths", "remote_output_paths"]

# The output "path" of a job on a Kubernetes pool: the log of its first pod, read by job id.
POD_LOG = "(pod log)"


@dataclass(frozen=True, slots=True)
class OutputPaths:
    """Paths on the pool; stderr None = joined with stdout; None = not known to sfedd."""

    stdout: str | None
    stderr: str | None


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

    if request.output is None and spool_dir:
        stdout: str | None = f"{spool_dir.rstrip('/')}/{federation}-{job.id}-{attempt}.out"
    elif request.output is None:
        stdout = resolve("slurm-%j.out")  # sbatch's default
    else:
        stdout = resolve(request.output)
    if request.separate_error and spool_dir:
        stderr: str | None = f"{spool_dir.rstrip('/')}/{federation}-{job.id}-{attempt}.err"
    else:
        stderr = resolve(request.error)
    return OutputPaths(stdout=stdout, stderr=stderr)
