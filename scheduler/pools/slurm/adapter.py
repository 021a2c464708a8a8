"""`SlurmPool`: one partition of one real Slurm cluster, driven through its client commands.

Each call is one command through a `Transport` (local subprocess or SSH):

    snapshot()     sinfo --json                    nodes listing the pool's partition
    submit()       sbatch --parsable ... (stdin)   the script byte for byte; the tag in --comment
    find()         squeue -O ... --states=all      the job whose comment is tag.render()
    poll()         squeue -O ... --states=all      one command for any number of ids
    cancel()       scancel <id>
    read_output()  /bin/dd if=<path> skip= count=  a byte range of a file (see below)

squeue runs in its plain-text form with only the fields read here (commands.squeue_argv), with
`TZ=UTC SLURM_TIME_FORMAT=standard` and without the SQUEUE_* filter variables of the login
environment; it lists every job the controller remembers, and the adapter picks its own.

Errors follow the Pool contract: the controller not answering (a timeout, "Unable to contact
slurm controller", or a JSON document whose `errors` is not empty, which is how Slurm 22.05's
`sinfo --json` reports it with exit status 0) raises PoolUnreachable; the controller refusing
(sbatch rejects the job, unknown partition) raises PoolError, and so does output this module
cannot read, rather than leaving a job out (a job missing from `poll` is taken for lost).
Nothing else escapes.

read_output reads the file as the transport's user (the daemon's locally, the SSH login's
over SSH) with GNU dd under `LC_ALL=C` (commands.read_output_argv), at most
commands.READ_OUTPUT_MAX bytes per call. Exit status 0: stdout is the answer, b"" at or past
the end. Exit status 1 with "No such file or directory" (the file or a directory on its way
does not exist yet) or "cannot skip: Invalid argument" (an offset past the largest file the
filesystem allows): b"". Any other failure, permission denied and a directory path ("Is a
directory") included, is a PoolError; dd missing on the pool (exit 126/127 from the remote
shell) is PoolUnreachable, as the transports report a command that cannot be run.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import structlog

from scheduler.config import ENVIRONMENT_DROP_SLURM
from scheduler.domain import (
    AttemptState,
    Job,
    NodeSnapshot,
    OutputPaths,
    RemoteJob,
    RemoteSubmission,
    RemoteTag,
)
from scheduler.pathmap import PathMap
from scheduler.pools.base import OutputRestarted, PoolError, PoolUnreachable
from scheduler.pools.slurm import commands, parse
from scheduler.pools.slurm.outputs import remote_output_paths, spool_dir_of, spool_paths
from scheduler.pools.slurm.transport import CommandResult, Transport

__all__ = ["SlurmPool"]

_NOT_THERE = ("Invalid job id specified", "already completing or completed")


class SlurmPool:
    """A `Pool` over one partition of one Slurm cluster (tested against Slurm 22.05)."""

    def __init__(
        self,
        name: str,
        transport: Transport,
        partition: str,
        *,
        command_timeout: float = 30.0,
        federation: str = "sfed",
        spool_dir: str | None = None,
        path_map: PathMap | None = None,
        environment_drop: Sequence[str] = ENVIRONMENT_DROP_SLURM,
    ) -> None:
        self.name = name
        self.transport = transport
        self.partition = partition
        self.command_timeout = command_timeout
        self.federation = federation
        # Where jobs that name no output file write it, under sfedd's own names.
        self.spool_dir = spool_dir
        self.path_map = path_map or PathMap()
        self.environment_drop = tuple(environment_drop)
        # Lazy: resolved against the structlog configuration in force at each call.
        self._log = structlog.get_logger(pool=name)

    def __repr__(self) -> str:
        return f"SlurmPool({self.name!r}, partition={self.partition!r}, {self.transport!r})"

    # -- plumbing ----------------------------------------------------------------------------

    async def _run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        unset: Collection[str] = (),
    ) -> CommandResult:
        try:
            return await self.transport.run(
                argv, stdin=stdin, env=env, unset=unset, timeout=self.command_timeout
            )
        except PoolUnreachable as exc:
            self._log.warning("slurm.unreachable", command=argv[0], error=str(exc))
            raise
        except ValueError as exc:  # argv or env that cannot be passed safely
            raise PoolError(f"{argv[0]}: {exc}") from exc

    def _failure(self, command: str, result: CommandResult) -> PoolError | PoolUnreachable:
        text = result.stderr_text().strip() or result.stdout_text().strip()
        if parse.is_unreachable_message(text):
            self._log.warning("slurm.unreachable", command=command, error=text)
            return PoolUnreachable(f"{self.name}: {command}: {text.splitlines()[0]}")
        first = text.splitlines()[0] if text else f"exit status {result.returncode}"
        return PoolError(f"{self.name}: {command} failed: {first}")

    async def _read(self, argv: Sequence[str], key: str) -> list[Mapping[str, Any]]:
        result = await self._run(argv)
        if not result.ok:
            raise self._failure(argv[0], result)
        try:
            return parse.load_json(result.stdout, key)
        except parse.UnreachableOutput as exc:
            self._log.warning("slurm.unreachable", command=argv[0], error=str(exc))
            raise PoolUnreachable(
                f"{self.name}: {argv[0]}: the controller did not answer ({exc})"
            ) from exc
        except parse.SlurmOutputError as exc:
            raise PoolError(f"{self.name}: {argv[0]}: {exc}") from exc

    async def _squeue(self) -> list[parse.SqueueRecord]:
        """Every job the controller remembers, as raw records."""
        marker = commands.new_squeue_marker()
        result = await self._run(
            commands.squeue_argv(marker),
            env=commands.SQUEUE_ENVIRONMENT,
            unset=commands.SQUEUE_UNSET_VARIABLES,
        )
        if not result.ok:
            raise self._failure("squeue", result)
        try:
            return parse.squeue_records(result.stdout_text(), marker)
        except parse.SlurmOutputError as exc:
            raise PoolError(f"{self.name}: squeue: {exc}") from exc

    def _parse_jobs(self, records: Iterable[parse.SqueueRecord]) -> list[RemoteJob]:
        """The jobs of `records`, one per id; PoolError when one cannot be read."""
        jobs: dict[str, RemoteJob] = {}
        for record in records:
            try:
                job = parse.job_from_squeue(record)
            except parse.SlurmOutputError as exc:
                self._log.warning("slurm.unparsed_job", job_id=record.job_id, error=str(exc))
                raise PoolError(f"{self.name}: squeue: job {record.job_id}: {exc}") from exc
            jobs[job.remote_id] = job  # a pending array repeats identical records
        return list(jobs.values())

    # -- Pool --------------------------------------------------------------------------------

    async def snapshot(self) -> tuple[NodeSnapshot, ...]:
        raw_nodes = await self._read(commands.sinfo_argv(), "nodes")
        try:
            nodes = parse.nodes_of_partition(raw_nodes, self.partition)
        except parse.SlurmOutputError as exc:
            raise PoolError(f"{self.name}: sinfo: {exc}") from exc
        if not nodes:
            raise PoolError(f"{self.name}: no node lists partition {self.partition!r}")
        self._log.debug(
            "slurm.snapshot",
            nodes=len(nodes),
            schedulable=sum(n.schedulable for n in nodes),
            gpus_free=sum(n.gpus_free for n in nodes if n.schedulable),
        )
        return nodes

    def output_paths(self, job: Job, attempt: int, remote_id: str | None) -> OutputPaths:
        return remote_output_paths(
            job,
            attempt,
            remote_id,
            federation=self.federation,
            spool_dir=self.spool_dir,
            path_map=self.path_map,
        )

    def environment_left_out(self, submission: RemoteSubmission) -> Mapping[str, str]:
        return commands.job_environment(submission, self.environment_drop)[1]

    def _spooled(self, submission: RemoteSubmission) -> tuple[RemoteSubmission, str]:
        """A job that names no output file writes it to its owner's spool directory, where
        sfedd reads it; and that directory, to be made before sbatch ("" for none)."""
        request = submission.request
        if request.output is not None or not self.spool_dir:
            return submission, ""
        if not commands.USER_NAME.fullmatch(submission.owner):
            raise ValueError(f"not a user name: {submission.owner!r}")
        tag = submission.tag  # named as output_paths names it, by this pool's federation
        spooled = spool_paths(
            self.spool_dir, submission.owner, self.federation, tag.job_id, tag.attempt
        )
        error = spooled.stderr if request.separate_error else request.error
        mapped = replace(request, output=spooled.stdout, error=error)
        return replace(submission, request=mapped), spool_dir_of(self.spool_dir, submission.owner)

    async def submit(self, submission: RemoteSubmission) -> str:
        tag = submission.tag.render()
        try:
            submission, spool = self._spooled(submission)
        except ValueError as exc:
            raise PoolError(f"{self.name}: cannot submit {tag}: {exc}") from exc
        env, left_out = commands.job_environment(submission, self.environment_drop)
        if left_out:
            self._log.warning("slurm.env_dropped", tag=tag, names=list(left_out))
        try:
            argv = commands.sbatch_argv(submission, self.partition)
        except ValueError as exc:
            raise PoolError(f"{self.name}: cannot submit {tag}: {exc}") from exc
        environment = commands.export_file(env)
        wrapped = commands.submit_argv(
            argv,
            environment,
            spool_dir=spool,
            owner=submission.run_as or "",
            submit_dir=submission.request.submit_dir or "",
        )
        result = await self._run(wrapped, stdin=environment + submission.request.script)
        if not result.ok:
            stderr = result.stderr_text()
            if parse.is_unreachable_message(stderr):
                raise self._failure("sbatch", result)
            reason = parse.rejection_reason(stderr)
            self._log.warning("slurm.submit_rejected", tag=tag, reason=reason)
            raise PoolError(f"{self.name}: sbatch rejected {tag}: {reason}")
        try:
            remote_id = parse.parse_sbatch_parsable(result.stdout_text())
        except parse.SlurmOutputError as exc:
            raise PoolError(f"{self.name}: {exc}") from exc
        self._log.info("slurm.submit", tag=tag, remote_id=remote_id, partition=self.partition)
        return remote_id

    async def find(self, tag: RemoteTag) -> RemoteJob | None:
        rendered = tag.render()
        records = await self._squeue()
        found = self._parse_jobs(r for r in records if r.comment == rendered)
        if not found:
            self._log.debug("slurm.find", tag=rendered, remote_id=None)
            return None
        if len(found) > 1:
            self._log.warning(
                "slurm.find_duplicates", tag=rendered, remote_ids=[j.remote_id for j in found]
            )
        # Several jobs with one tag should not happen; prefer one still alive, then the newest.
        alive = {AttemptState.PENDING, AttemptState.RUNNING}
        job = max(found, key=lambda j: (j.state in alive, int(j.remote_id.split("_")[0])))
        self._log.debug("slurm.find", tag=rendered, remote_id=job.remote_id, state=job.state)
        return job

    async def poll(self, remote_ids: Sequence[str]) -> dict[str, RemoteJob]:
        if not remote_ids:
            return {}
        wanted = set(remote_ids)
        records = await self._squeue()
        jobs = self._parse_jobs(r for r in records if r.job_id in wanted)
        result = {job.remote_id: job for job in jobs}
        self._log.debug("slurm.poll", asked=len(wanted), found=len(result))
        return result

    async def signal(self, remote_id: str, signal: str, *, batch_only: bool) -> None:
        try:
            argv = commands.signal_argv(remote_id, signal, batch_only=batch_only)
        except ValueError as exc:
            raise PoolError(f"{self.name}: {exc}") from exc
        result = await self._run(argv)
        if not result.ok:
            raise self._failure("scancel", result)
        self._log.info("slurm.signal", remote_id=remote_id, signal=signal, batch_only=batch_only)

    async def cancel(self, remote_id: str) -> None:
        try:
            argv = commands.scancel_argv(remote_id)
        except ValueError as exc:
            raise PoolError(f"{self.name}: {exc}") from exc
        result = await self._run(argv)
        text = result.stderr_text()
        if result.ok or any(marker in text for marker in _NOT_THERE):
            self._log.info("slurm.cancel", remote_id=remote_id)
            return
        raise self._failure("scancel", result)

    async def read_output(
        self, path: str, offset: int, limit: int, *, remote_id: str = ""
    ) -> bytes:
        try:
            commands.check_read_request(path, offset, limit)
            if limit == 0:
                return b""
            argv = commands.read_output_argv(path, offset, limit)
        except ValueError as exc:
            raise PoolError(f"{self.name}: cannot read output: {exc}") from exc
        result = await self._run(argv, env=commands.READ_OUTPUT_ENVIRONMENT)
        if result.ok:
            self._log.debug("slurm.read_output", path=path, offset=offset, size=len(result.stdout))
            if not result.stdout and offset > 0:
                await self._check_not_restarted(path, offset)
            return result.stdout
        text = result.stderr_text().strip()
        if parse.dd_nothing_to_read(text):
            self._log.debug("slurm.read_output", path=path, offset=offset, size=0, error=text)
            if offset > 0:
                await self._check_not_restarted(path, offset)
            return b""
        last = text.splitlines()[-1] if text else f"exit status {result.returncode}"
        if result.returncode in (126, 127):  # the remote shell could not run dd
            self._log.warning("slurm.unreachable", command="dd", error=last)
            raise PoolUnreachable(f"{self.name}: cannot run {commands.DD}: {last}")
        raise PoolError(f"{self.name}: cannot read {path!r}: {last}")

    async def _check_not_restarted(self, path: str, offset: int) -> None:
        """Nothing past `offset`: raise OutputRestarted if the file is now shorter (a rerun of
        the job started it anew). A size that cannot be read says nothing."""
        result = await self._run(commands.size_argv(path), env=commands.READ_OUTPUT_ENVIRONMENT)
        size = result.stdout_text().strip()
        if result.ok and size.isdigit() and int(size) < offset:
            self._log.info("slurm.output_restarted", path=path, offset=offset, size=int(size))
            raise OutputRestarted(int(size))

    async def close(self) -> None:
        await self.transport.close()
