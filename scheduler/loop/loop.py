"""The federation loop: snapshot pools -> reconcile attempts -> place -> submit.

Level-triggered: every pass compares the store (the truth for the federation) with each pool
(the truth for its own jobs) and repairs the difference, so a lost event or a crash heals on
the next pass. Load, process, apply: store calls are short transactions made between pool
calls, never around them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import ParamSpec, TypeVar

import structlog

from scheduler import faults
from scheduler.config import Config, PoolConfig
from scheduler.domain import (
    TERMINAL_ATTEMPT_STATES,
    Attempt,
    AttemptState,
    Decision,
    Job,
    JobRequest,
    JobState,
    NodeSnapshot,
    Outcome,
    PoolSnapshot,
    PoolState,
    RemoteJob,
    RemoteTag,
)
from scheduler.lifecycle import Report
from scheduler.loop.capabilities import render_capabilities, write_atomically
from scheduler.loop.facade import NotDelivered, OutputUnknown, PoolStatus
from scheduler.loop.submission import environment_note, remote_submission
from scheduler.placement import Policy, never_fits, place
from scheduler.pools.base import OutputRestarted, Pool, PoolError, PoolUnreachable
from scheduler.store import PoolRecord, StaleJob, Store

__all__ = ["Loop", "PassReport", "PoolView"]

log = structlog.get_logger("sfed.loop")
P = ParamSpec("P")
T = TypeVar("T")

SUBMIT_CONCURRENCY = 8


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class PoolView:
    """What the loop knows of one pool right now; the loop's own memory, never the API's."""

    config: PoolConfig
    adapter: Pool
    nodes: tuple[NodeSnapshot, ...] | None = None  # last snapshot; None = never reached
    reachable: bool = True
    error: str = ""
    drained: bool = False
    updated_at: datetime | None = None
    capacity_key: tuple[tuple[str, int, int, int], ...] = ()

    @property
    def state(self) -> PoolState:
        if self.drained:
            return PoolState.DRAINED
        return PoolState.UP if self.reachable else PoolState.UNREACHABLE

    def status(self) -> PoolStatus:
        return PoolStatus(
            name=self.config.name,
            kind=self.config.kind,
            transport=self.config.transport_label(),
            partition=self.config.served_partition(),
            price_per_gpu_hour=self.config.price_per_gpu_hour,
            weight=self.config.weight,
            nodes=self.nodes,
            reachable=self.reachable,
            error=self.error,
            updated_at=self.updated_at,
        )


@dataclass
class PassReport:
    """What one pass did, for logs and tests."""

    placed: list[int] = field(default_factory=list)
    waiting: int = 0
    state_changes: int = 0
    unreachable: list[str] = field(default_factory=list)


class Loop:
    """Runs passes until stopped; `wake()` asks for a pass now (after a submit or cancel).

    Serves the API through `LoopFacade` (scheduler.loop.facade) and nothing else.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        adapters: Mapping[str, Pool],
        *,
        clock: Callable[[], datetime] = utcnow,
        fault_points: frozenset[str] = frozenset(),
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.faults = fault_points
        self.policy = Policy(virtual_partition=config.federation.virtual_partition)
        self.pools: dict[str, PoolView] = {
            pc.name: PoolView(config=pc, adapter=adapters[pc.name]) for pc in config.pools
        }
        self._wake = asyncio.Event()
        self._changed = asyncio.Event()
        self._timeout = config.loop.pool_timeout_s
        self._published: tuple[str, datetime] = ("", datetime.min.replace(tzinfo=UTC))

    # -- public -------------------------------------------------------------------------

    def wake(self) -> None:
        """Ask for a pass now (after a submit, a cancel, a drain)."""
        self._wake.set()

    async def wait_changed(self, timeout: float) -> None:
        """Return when the loop next records a change, or after `timeout` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), timeout)

    def _notify(self) -> None:
        # Wake every current waiter once; later waiters wait for the next change.
        self._changed.set()
        self._changed = asyncio.Event()

    async def start(self) -> None:
        """Create pool rows, load the last known capacities, then take a first snapshot.

        Bounded by pool_timeout_s: a silent pool is marked unreachable and keeps its last
        known capacity, so submit-time checks still work.
        """
        await self._db(self.store.ensure_pools, list(self.pools), self.clock())
        records = await self._db(self.store.pools)
        for name, view in self.pools.items():
            record = records.get(name)
            if record is not None:
                self._apply_record(view, record)
                view.nodes = record.capacity
        await self._refresh_pools(PassReport())

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # Cleared before the pass: a wake() during the pass asks for another one at once.
            self._wake.clear()
            try:
                await self.run_pass()
            except Exception:  # a pass must never end the loop; the next one repairs
                log.exception("loop.pass_failed")
            waiters = {asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())}
            _, pending = await asyncio.wait(
                waiters, timeout=self.config.loop.interval_s, return_when=asyncio.FIRST_COMPLETED
            )
            for waiter in pending:
                waiter.cancel()

    async def run_pass(self) -> PassReport:
        report = PassReport()
        await self._refresh_pools(report)
        await self._reconcile(report)
        await self._place(report)
        if report.placed or report.state_changes:
            self._notify()
            log.info(
                "loop.pass",
                placed=len(report.placed),
                waiting=report.waiting,
                changes=report.state_changes,
            )
        return report

    def snapshots(
        self, inflight: Mapping[str, Sequence[JobRequest]] | None = None
    ) -> list[PoolSnapshot]:
        """The pure core's view of every pool."""
        return [
            PoolSnapshot(
                name=name,
                state=view.state,
                nodes=view.nodes or (),
                weight=view.config.weight,
                price_per_gpu_hour=view.config.price_per_gpu_hour,
                partition=view.config.served_partition(),
                taken_at=view.updated_at,
                inflight=tuple((inflight or {}).get(name, ())),
            )
            for name, view in self.pools.items()
        ]

    def never_fits(self, request: JobRequest) -> str | None:
        return never_fits(request, self.snapshots(), self.policy)

    # -- LoopFacade ----------------------------------------------------------------------

    def pool_names(self) -> tuple[str, ...]:
        return tuple(self.pools)

    def pool_statuses(self) -> tuple[PoolStatus, ...]:
        return tuple(view.status() for view in self.pools.values())

    async def signal(self, job: Job, signal: str, *, batch_only: bool) -> None:
        view = self.pools.get(job.pool or "")
        if (
            not job.remote_id
            or view is None
            or job.state not in (JobState.PLACED, JobState.RUNNING)
        ):
            raise NotDelivered(f"job {job.id} is not running on a pool")
        try:
            await self._call(
                view, view.adapter.signal(job.remote_id, signal, batch_only=batch_only)
            )
        except (PoolUnreachable, PoolError) as exc:
            raise NotDelivered(str(exc)) from None
        log.info(
            "job.signalled", job_id=job.id, pool=job.pool, signal=signal, batch_only=batch_only
        )

    async def read_output(self, job: Job, *, stderr: bool, offset: int, limit: int) -> bytes:
        view = self.pools.get(job.pool or "")
        if not job.remote_id or view is None:
            return b""
        paths = view.adapter.output_paths(job, job.attempt, job.remote_id)
        path = paths.stderr if stderr else paths.stdout
        if path is None:
            if stderr:
                return b""
            raise OutputUnknown(f"job {job.id}'s output file is not known to sfedd")
        try:
            return await self._call(
                view, view.adapter.read_output(path, offset, limit, remote_id=job.remote_id)
            )
        except OutputRestarted:
            raise  # the caller reads again from 0
        except (PoolUnreachable, PoolError) as exc:
            log.warning("job.output_unreadable", job_id=job.id, pool=job.pool, error=str(exc))
            return b""

    def _publish_capabilities(self, now: datetime) -> None:
        """Rewrite the capabilities file when it changed, and at least every minute so that
        the shim never sees it stale while sfedd runs; skipped while a pool was never reached
        (the shim then accepts everything rather than refuse what that pool could run)."""
        path = self.config.federation.capabilities_file
        snapshots = self.snapshots()
        if not path or any(not s.nodes for s in snapshots):
            return
        text = render_capabilities(snapshots, self.policy.virtual_partition, now)
        body = text.split("\n", 1)[1]
        if body == self._published[0] and (now - self._published[1]).total_seconds() < 60:
            return
        write_atomically(Path(path), text)
        self._published = (body, now)

    # -- steps ----------------------------------------------------------------------------

    async def _refresh_pools(self, report: PassReport) -> None:
        records = await self._db(self.store.pools)
        results = await asyncio.gather(
            *(self._call(view, view.adapter.snapshot()) for view in self.pools.values()),
            return_exceptions=True,
        )
        now = self.clock()
        for (name, view), result in zip(self.pools.items(), results, strict=True):
            if name in records:
                self._apply_record(view, records[name])
            if isinstance(result, BaseException):
                if not isinstance(result, PoolUnreachable | PoolError):
                    log.error("pool.snapshot_crashed", pool=name, error=repr(result))
                await self._mark_unreachable(view, str(result) or type(result).__name__)
                report.unreachable.append(name)
                continue
            view.nodes, view.updated_at = result, now
            if not view.reachable:
                log.info("pool.reachable", pool=name)
                await self._db(self.store.set_pool_reachable, name, True, "", now)
            view.reachable, view.error = True, ""
            key = tuple((n.name, n.gpus_total, n.cpus_total, n.mem_total_mb) for n in result)
            if key != view.capacity_key:
                await self._db(self.store.save_capacity, name, result, now)
                view.capacity_key = key
        try:
            self._publish_capabilities(now)
        except OSError as exc:
            log.error("capabilities.write_failed", error=str(exc))

    async def _reconcile(self, report: PassReport) -> None:
        attempts = await self._db(self.store.active_attempts)
        if not attempts:
            return
        jobs = {job.id: job for job in await self._db(self.store.active_jobs)}
        by_pool: dict[str, list[Attempt]] = defaultdict(list)
        for attempt in attempts:
            by_pool[attempt.pool].append(attempt)
        for pool_name, pool_attempts in by_pool.items():
            view = self.pools.get(pool_name)
            if view is None:
                for attempt in pool_attempts:
                    lost = Report.lost(f"pool {pool_name} is no longer configured")
                    await self._update(report, attempt, lost)
                continue
            if not view.reachable:
                continue
            try:
                await self._reconcile_pool(report, view, pool_attempts, jobs)
            except (PoolUnreachable, PoolError) as exc:
                await self._mark_unreachable(view, str(exc))
                report.unreachable.append(pool_name)

    async def _reconcile_pool(
        self, report: PassReport, view: PoolView, attempts: list[Attempt], jobs: Mapping[int, Job]
    ) -> None:
        name = view.config.name
        polled: list[Attempt] = []
        for attempt in attempts:
            if attempt.remote_id is not None:
                polled.append(attempt)
                continue
            # Recorded the intent but not the remote id: a crash or a timeout between the two.
            tag = self._tag(attempt.job_id, attempt.number)
            found = await self._call(view, view.adapter.find(tag))
            job = jobs.get(attempt.job_id)
            if found is not None:
                log.info(
                    "attempt.recovered", job_id=attempt.job_id, pool=name, remote_id=found.remote_id
                )
                await self._db(
                    self.store.record_remote_id,
                    attempt.job_id,
                    attempt.number,
                    found.remote_id,
                    self.clock(),
                )
                polled.append(
                    replace(attempt, remote_id=found.remote_id, state=AttemptState.PENDING)
                )
            else:
                if job is None or not job.cancel_requested:
                    log.warning("attempt.not_found", job_id=attempt.job_id, pool=name)
                await self._db(
                    self.store.abort_attempt,
                    attempt.job_id,
                    attempt.number,
                    Outcome.NOT_SUBMITTED,
                    f"the submission never reached {name}",
                    self.clock(),
                )
                report.state_changes += 1
        if not polled:
            return
        remote = await self._call(
            view, view.adapter.poll([a.remote_id for a in polled if a.remote_id])
        )
        for attempt in polled:
            assert attempt.remote_id is not None
            seen = remote.get(attempt.remote_id)
            job = jobs.get(attempt.job_id)
            if seen is None:
                lost = Report.lost(f"{name} no longer knows job {attempt.remote_id}")
                await self._update(report, attempt, lost)
                continue
            await self._apply_remote(report, attempt, seen)
            if (
                job is not None
                and job.cancel_requested
                and seen.state not in TERMINAL_ATTEMPT_STATES
            ):
                log.info(
                    "job.cancel_remote",
                    job_id=attempt.job_id,
                    pool=name,
                    remote_id=attempt.remote_id,
                )
                await self._call(view, view.adapter.cancel(attempt.remote_id))

    async def _place(self, report: PassReport) -> None:
        pending = await self._db(self.store.pending_jobs)
        if not pending:
            return
        # Drains are read after the jobs: a drain committed before a job was submitted is
        # seen by the pass that first sees the job (the API only writes drains to the store).
        for name, record in (await self._db(self.store.pools)).items():
            if name in self.pools:
                self._apply_record(self.pools[name], record)
        inflight: dict[str, list[JobRequest]] = defaultdict(list)
        for job in await self._db(self.store.active_jobs):
            if job.state is JobState.PLACED and job.pool:
                inflight[job.pool].append(job.request)
        decisions = place(self.snapshots(inflight), pending, self.policy, self.clock())
        jobs = {job.id: job for job in pending}
        waiting = [d for d in decisions if not d.placed]
        report.waiting = len(waiting)
        if waiting:
            await self._db(
                self.store.set_reasons,
                {d.job_id: d.explain() for d in waiting},
                {d.job_id: d.verdicts for d in waiting},
            )
        gate = asyncio.Semaphore(SUBMIT_CONCURRENCY)

        async def start(decision: Decision) -> None:
            async with gate:
                await self._start(report, jobs[decision.job_id], decision)

        await asyncio.gather(*(start(d) for d in decisions if d.placed))

    async def _start(self, report: PassReport, job: Job, decision: Decision) -> None:
        assert decision.pool is not None
        view = self.pools[decision.pool]
        bound = log.bind(job_id=job.id, pool=decision.pool)
        try:
            attempt = await self._db(
                self.store.begin_attempt,
                job.id,
                decision.pool,
                decision.explain(),
                self.clock(),
                verdicts=decision.verdicts,
            )
        except StaleJob:
            return  # cancelled meanwhile
        submission = remote_submission(job, attempt.number, view.config, self.config.federation)
        try:
            remote_id = await self._call(view, view.adapter.submit(submission))
        except PoolUnreachable as exc:
            # It may or may not have arrived: the next pass asks the pool (find by tag). One
            # job's unanswered submission says nothing of the pool: its snapshot decides.
            bound.warning("job.submit_unanswered", error=str(exc))
            unanswered = Report(AttemptState.SUBMITTING, reason=f"no answer to sbatch: {exc}")
            await self._update(report, attempt, unanswered)
            return
        except PoolError as exc:
            after = await self._db(
                self.store.abort_attempt,
                job.id,
                attempt.number,
                Outcome.REFUSED,
                f"{decision.pool} refused the job: {exc}",
                self.clock(),
            )
            again = after.state is JobState.PENDING
            bound.warning("job.submit_refused", error=str(exc), again=again)
            report.state_changes += 1
            return
        faults.hit(faults.CRASH_AFTER_REMOTE_SUBMIT, self.faults)
        await self._db(self.store.record_remote_id, job.id, attempt.number, remote_id, self.clock())
        left_out = view.adapter.environment_left_out(submission)
        if left_out:  # never silently: the owner sees it in sfed explain and sfed watch
            await self._db(
                self.store.note,
                job.id,
                "environment",
                environment_note(decision.pool, left_out),
                self.clock(),
                pool=decision.pool,
                attempt=attempt.number,
            )
        self._notify()
        bound.info("job.submitted", remote_id=remote_id, attempt=attempt.number)
        report.placed.append(job.id)

    # -- helpers --------------------------------------------------------------------------

    def _tag(self, job_id: int, attempt: int) -> RemoteTag:
        return RemoteTag(self.config.federation.name, job_id, attempt)

    async def _apply_remote(self, report: PassReport, attempt: Attempt, seen: RemoteJob) -> None:
        if (
            seen.state == attempt.state
            and seen.exit_code == attempt.exit_code
            and (seen.nodelist or attempt.nodelist) == attempt.nodelist  # Slurm drops it at the end
        ):
            return
        await self._update(report, attempt, Report.of(seen))

    async def _update(self, report: PassReport, attempt: Attempt, seen: Report) -> None:
        job = await self._db(self.store.report, attempt.job_id, attempt.number, seen, self.clock())
        report.state_changes += 1
        log.info(
            "job.state",
            job_id=attempt.job_id,
            pool=attempt.pool,
            attempt=attempt.number,
            state=job.state.value,
            exit_code=job.exit_code,
            reason=seen.reason or None,
        )

    async def _mark_unreachable(self, view: PoolView, error: str) -> None:
        if view.reachable:
            log.warning("pool.unreachable", pool=view.config.name, error=error)
        view.reachable, view.error = False, f"unreachable: {error}"
        await self._db(self.store.set_pool_reachable, view.config.name, False, error, self.clock())

    @staticmethod
    def _apply_record(view: PoolView, record: PoolRecord) -> None:
        view.drained = record.drained

    async def _call(self, view: PoolView, call: Awaitable[T]) -> T:
        try:
            return await asyncio.wait_for(call, self._timeout)
        except TimeoutError:
            raise PoolUnreachable(
                f"{view.config.name} did not answer in {self._timeout:g} s"
            ) from None

    @staticmethod
    async def _db(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)
