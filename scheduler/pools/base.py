"""The one protocol every pool adapter (Slurm, Kubernetes) implements.

The loop calls these from asyncio; an adapter never touches the store. Every method either
returns, or raises `PoolUnreachable` (the pool did not answer: transport down, timeout,
controller not responding) or `PoolError` (the pool answered and refused: bad request,
unknown partition). Nothing else escapes an adapter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from scheduler.domain import (
    Job,
    NodeSnapshot,
    OutputPaths,
    RemoteJob,
    RemoteSubmission,
    RemoteTag,
)

__all__ = ["OutputRestarted", "Pool", "PoolError", "PoolUnreachable"]


class PoolError(Exception):
    """The pool answered and refused the request; retrying the same call will not help."""


class OutputRestarted(Exception):
    """The job's output file is now shorter than the offset asked: the pool started it anew
    (Slurm truncates a job's file when it reruns the job it requeued). Read again from 0."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the output file was started anew ({size} bytes now)")
        self.size = size


class PoolUnreachable(Exception):
    """The pool did not answer in time; the loop marks it unreachable and retries later."""


@runtime_checkable
class Pool(Protocol):
    """A place that runs whole jobs: one Slurm cluster (partition) or one Kubernetes node pool."""

    name: str

    def output_paths(self, job: Job, attempt: int, remote_id: str | None) -> OutputPaths:
        """Where attempt `attempt` of `job` (remote id `remote_id`, when known) writes its
        stdout and stderr on this pool, for `read_output`. Pure: no I/O, never raises.

        `job.request` is the federation's request (paths not yet mapped to the pool); a path
        the pool cannot know yet (a pattern needing the remote id) is None.
        """
        ...

    def environment_left_out(self, submission: RemoteSubmission) -> Mapping[str, str]:
        """The job's own variables (request and SFED_*) this pool will not pass to the job,
        each with why, in one short phrase. Pure: no I/O, never raises. The loop tells the
        job's owner, so that nothing is dropped silently."""
        ...

    async def snapshot(self) -> tuple[NodeSnapshot, ...]:
        """Free and total resources of every node of the pool, as the pool sees them now.

        Read-only, idempotent; one round trip or a few (well under a second on a healthy pool).
        Nodes that cannot take work (down, drained, cordoned) are returned with
        `schedulable=False` so that capacity tables still show them.
        """
        ...

    async def submit(self, submission: RemoteSubmission) -> str:
        """Start the job on the pool and return the pool's id for it.

        A terminal `RemoteJob` later reported for it carries an `Outcome` (how it ended), never
        only words: the job lifecycle decides from the outcome.

        NOT idempotent by itself: the caller must call `find(submission.tag)` first when a
        previous submission of the same tag may have reached the pool. The remote job carries
        `submission.tag` so that `find` can see it. The script reaches the pool byte-identical.
        Raises PoolError when the pool rejects the job.
        """
        ...

    async def find(self, tag: RemoteTag) -> RemoteJob | None:
        """The remote job carrying `tag`, or None when the pool has none (read-only)."""
        ...

    async def poll(self, remote_ids: Sequence[str]) -> dict[str, RemoteJob]:
        """Current state of the given remote jobs, in one round trip where the pool allows.

        Ids the pool no longer knows are absent from the result (the caller decides LOST).
        A finished job is reported with its terminal state and exit code while the pool
        still remembers it.
        """
        ...

    async def signal(self, remote_id: str, signal: str, *, batch_only: bool) -> None:
        """Send `signal` (a name of domain.SIGNALS) to the running job, as `scancel -s`: with
        `batch_only` to the batch script's shell only, else to every process of the job.

        NOT idempotent: each call sends once. One round trip. Raises PoolError when the pool
        refuses (the job has ended or is unknown, or the pool cannot signal its jobs: the
        message says so), PoolUnreachable when it does not answer.
        """
        ...

    async def cancel(self, remote_id: str) -> None:
        """Ask the pool to stop the job. Idempotent: cancelling a finished or unknown job is
        not an error."""
        ...

    async def read_output(
        self, path: str, offset: int, limit: int, *, remote_id: str = ""
    ) -> bytes:
        """Up to `limit` bytes of the file `path` on the pool, from byte `offset`.

        `path` is one of `output_paths()`; a pool whose jobs' output is not in files
        (Kubernetes: the first pod's log) reads the job `remote_id`'s.

        Read-only, idempotent; one round trip (well under a second for a few MiB on a healthy
        pool). The bytes are returned exactly as stored (binary, NUL, not UTF-8). Fewer than
        `limit` bytes come back when the file ends sooner (it may still be growing) or when
        `limit` exceeds what the adapter reads per call: the caller asks again from
        `offset + len(result)`. b"" when the file does not exist yet or ends at `offset` (a job
        that has not started has no output file yet): NOT an error.
        Raises PoolUnreachable when the pool does not answer; PoolError for a path that is not
        absolute or an offset/limit < 0, and when the pool answers that the file cannot be
        read (permission denied, a directory); OutputRestarted when the file is now shorter
        than `offset` (a pool that can tell: Slurm pools).
        """
        ...

    async def close(self) -> None:
        """Release connections. Idempotent."""
        ...
