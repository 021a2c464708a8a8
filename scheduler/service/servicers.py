"""grpc.aio servicers: proto <-> domain only; the store and the loop do the work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn, ParamSpec, TypeVar

import grpc
import structlog
from google.protobuf.message import Message

from scheduler.config import Config
from scheduler.domain import TERMINAL_JOB_STATES, Decision, Job, JobState, PoolState
from scheduler.identity import Caller
from scheduler.loop import LoopFacade, NotDelivered, OutputUnknown, PoolStatus
from scheduler.loop.loop import utcnow
from scheduler.pools.base import OutputRestarted
from scheduler.proto_gen.sfed.v1 import sfed_pb2 as pb
from scheduler.proto_gen.sfed.v1 import sfed_pb2_grpc as pb_grpc
from scheduler.service import access, convert, validate
from scheduler.service.auth import authenticate, check_claimed_user
from scheduler.service.paging import PageToken
from scheduler.service.status import abort
from scheduler.service.validate import InvalidArgument
from scheduler.store import PoolRecord, Store, UnknownJob, UnknownPool

__all__ = ["AdminServicer", "FederationServicer"]

log = structlog.get_logger("sfed.api")
P = ParamSpec("P")
T = TypeVar("T")
WATCH_POLL_S = 0.5
OUTPUT_CHUNK = 1024 * 1024
PAGE_BYTES = 2 * 1024 * 1024  # a listing page stops growing past this
NOTE_KINDS = frozenset({"environment"})  # events GetJob shows the owner as notes


async def _db(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def _invalid(context: Any, exc: InvalidArgument) -> NoReturn:
    await abort(context, grpc.StatusCode.INVALID_ARGUMENT, str(exc))


def _job_id(value: int) -> int:
    if value <= 0:
        raise InvalidArgument("job_id", "must be a positive job id")
    return value


class _Served:
    """What both services serve from: the store, the loop's facade, the config."""

    def __init__(self, store: Store, loop: LoopFacade, config: Config) -> None:
        self.store, self.loop, self.config = store, loop, config
        tls = config.server.tls
        self._client_users = dict(tls.client_users) if tls is not None else {}

    async def _authenticate(self, context: Any, rpc: str, request: Message) -> Caller:
        return await authenticate(context, rpc, request, self._client_users)


class FederationServicer(_Served, pb_grpc.FederationServicer):
    async def SubmitJob(self, request: pb.SubmitJobRequest, context: Any) -> pb.SubmitJobResponse:
        caller = await self._authenticate(context, "SubmitJob", request)
        await check_claimed_user(context, request.user, caller)
        try:
            if not request.HasField("spec"):
                raise InvalidArgument("spec", "required")
            job_request = validate.job_request(request.spec)
            client_key = validate.client_key(request.client_key)
        except InvalidArgument as exc:
            await _invalid(context, exc)
        if client_key is not None:
            known = await _db(self.store.job_by_key, client_key)
            if known is not None:
                if known.user != caller.user:
                    await abort(
                        context,
                        grpc.StatusCode.PERMISSION_DENIED,
                        f"client key {client_key!r} belongs to another user's job",
                    )
                return pb.SubmitJobResponse(job_id=known.id)
        impossible = self.loop.never_fits(job_request)
        if impossible:
            await abort(context, grpc.StatusCode.FAILED_PRECONDITION, impossible)
        job = await _db(
            self.store.add_job, caller.user, job_request, utcnow(), client_key=client_key
        )
        log.info(
            "job.accepted",
            job_id=job.id,
            user=caller.user,
            nodes=job_request.nodes,
            gpus_per_node=job_request.gpus_per_node,
        )
        self.loop.wake()
        return pb.SubmitJobResponse(job_id=job.id)

    async def _load(self, job_id: int, caller: Caller, context: Any) -> Job:
        """The job, or abort INVALID_ARGUMENT (bad id) or NOT_FOUND (no such job, or one the
        caller may not see)."""
        try:
            job_id = _job_id(job_id)
        except InvalidArgument as exc:
            await _invalid(context, exc)
        job = await _db(self.store.get_job, job_id)
        if job is None or not access.sees(caller, job, self.config.server):
            await abort(context, grpc.StatusCode.NOT_FOUND, f"job {job_id} does not exist")
        return job

    async def _load_own(self, job_id: int, caller: Caller, action: str, context: Any) -> Job:
        """The job if the caller owns it or is an admin; else abort PERMISSION_DENIED."""
        job = await self._load(job_id, caller, context)
        if not access.may_read_private(caller, job, self.config.server):
            await abort(
                context,
                grpc.StatusCode.PERMISSION_DENIED,
                f"job {job.id} belongs to {job.user}; only it or an admin may {action}",
            )
        return job

    async def _info(self, job: Job, caller: Caller) -> pb.JobInfo:
        private = access.may_read_private(caller, job, self.config.server)
        info = convert.job_info(job, await _db(self.store.attempts, job.id), private=private)
        if private:  # what was left out of an environment names the owner's variables
            events = await _db(self.store.events, job.id)
            info.notes.extend(e.message for e in events if e.kind in NOTE_KINDS)
        return info

    async def GetJob(self, request: pb.GetJobRequest, context: Any) -> pb.JobInfo:
        caller = await self._authenticate(context, "GetJob", request)
        if not request.front_door:
            return await self._info(await self._load(request.job_id, caller, context), caller)
        try:
            prefix = validate.front_door_id(request.front_door)
        except InvalidArgument as exc:
            await _invalid(context, exc)
        job = await _db(self.store.job_by_key_prefix, prefix)
        if job is None or not access.sees(caller, job, self.config.server):
            await abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"front-door job {request.front_door} is not known to the federation",
            )
        return await self._info(job, caller)

    async def ListJobs(self, request: pb.ListJobsRequest, context: Any) -> pb.ListJobsResponse:
        caller = await self._authenticate(context, "ListJobs", request)
        try:
            states = validate.job_states(request.states)
            size = validate.page_size(request.page_size)
            token = PageToken.decode(request.page_token) if request.page_token else None
        except InvalidArgument as exc:
            await _invalid(context, exc)
        user = request.user or None
        if "jobs" in self.config.server.private_data and not access.is_admin(
            caller, self.config.server
        ):
            if user not in (None, caller.user):
                return pb.ListJobsResponse()  # other users' jobs do not exist for the caller
            user = caller.user
        sent = token.sent if token else 0
        if request.limit:
            size = min(size, request.limit - sent)
        if size <= 0:
            return pb.ListJobsResponse()
        jobs = await _db(
            self.store.list_jobs,
            states=states,
            user=user,
            pool=request.pool or None,
            since=convert.from_timestamp(request.since) if request.HasField("since") else None,
            until=convert.from_timestamp(request.until) if request.HasField("until") else None,
            limit=size + 1,  # one more tells whether there is a next page
            newest_first=request.newest_first,
            after=(token.submitted_at, token.job_id) if token else None,
        )
        page = pb.ListJobsResponse()
        for job in jobs[:size]:
            page.jobs.append(convert.job_info(job))  # listings never carry an environment
            if page.ByteSize() > PAGE_BYTES:
                break
        if len(page.jobs) < len(jobs):
            last = jobs[len(page.jobs) - 1]
            page.next_page_token = PageToken(
                last.submitted_at, last.id, sent + len(page.jobs)
            ).encode()
        return page

    async def CancelJob(self, request: pb.CancelJobRequest, context: Any) -> pb.JobInfo:
        caller = await self._authenticate(context, "CancelJob", request)
        await check_claimed_user(context, request.user, caller)
        user = caller.user
        job_id = (await self._load_own(request.job_id, caller, "cancel it", context)).id
        try:
            job = await _db(self.store.request_cancel, job_id, utcnow(), by=user)
        except UnknownJob:
            await abort(context, grpc.StatusCode.NOT_FOUND, f"job {job_id} does not exist")
        log.info("job.cancel_requested", job_id=job_id, by=user)
        self.loop.wake()
        return await self._info(job, caller)

    async def SignalJob(self, request: pb.SignalJobRequest, context: Any) -> pb.JobInfo:
        caller = await self._authenticate(context, "SignalJob", request)
        await check_claimed_user(context, request.user, caller)
        try:
            name = validate.signal_name(request.signal)
        except InvalidArgument as exc:
            await _invalid(context, exc)
        job = await self._load_own(request.job_id, caller, "signal it", context)
        try:
            await self.loop.signal(job, name, batch_only=request.batch_only)
        except NotDelivered as exc:
            await abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(exc))
        which = "the batch shell of" if request.batch_only else "every process of"
        message = f"SIG{name} sent to {which} {job.pool} job {job.remote_id} by {caller.user}"
        await _db(
            self.store.note, job.id, "signal", message, utcnow(), pool=job.pool, attempt=job.attempt
        )
        return await self._info(job, caller)

    async def WatchJob(
        self, request: pb.WatchJobRequest, context: Any
    ) -> AsyncIterator[pb.JobEvent]:
        caller = await self._authenticate(context, "WatchJob", request)
        job_id = request.job_id
        after = request.after_event_id
        while True:
            job = await self._load(job_id, caller, context)
            for event in await _db(self.store.events, job_id, after):
                after = event.id
                yield convert.job_event(event, job.state.value)
            if job.state in TERMINAL_JOB_STATES:
                return
            # Woken by the loop's next change; the timeout catches changes made by the API.
            await self.loop.wait_changed(WATCH_POLL_S)

    async def StreamOutput(
        self, request: pb.StreamOutputRequest, context: Any
    ) -> AsyncIterator[pb.OutputChunk]:
        """Read the current attempt's output file on its pool and follow it to the end."""
        caller = await self._authenticate(context, "StreamOutput", request)
        offset = request.offset
        while True:
            job = await self._load_own(request.job_id, caller, "read its output", context)
            ended = job.state in TERMINAL_JOB_STATES
            try:
                data = await self.loop.read_output(
                    job, stderr=request.stderr, offset=offset, limit=OUTPUT_CHUNK
                )
            except OutputUnknown as exc:
                await abort(context, grpc.StatusCode.FAILED_PRECONDITION, str(exc))
            except OutputRestarted:
                # The pool reran the job and started its file anew: its output follows from
                # byte 0 (the chunk's offset says so; the front door appends it).
                offset = 0
                continue
            if data:
                yield pb.OutputChunk(data=data, offset=offset, attempt=job.attempt)
                offset += len(data)
                continue  # more may be there already
            if ended or not request.follow:
                return
            await self.loop.wait_changed(WATCH_POLL_S)

    async def ExplainJob(self, request: pb.ExplainJobRequest, context: Any) -> pb.Explanation:
        caller = await self._authenticate(context, "ExplainJob", request)
        job = await self._load(request.job_id, caller, context)
        events = await _db(self.store.events, job.id)
        if job.state is JobState.PENDING and job.verdicts:
            summary = Decision(job.id, None, job.verdicts).summary
        elif job.state is JobState.PENDING or not job.pool:
            summary = job.reason or "waiting for the next placement pass"
        else:
            summary = f"{job.state.value.lower()} on {job.pool}" + (
                f": {job.reason}" if job.reason else ""
            )
        return pb.Explanation(
            job_id=job.id,
            state=job.state.value,
            summary=summary,
            pool_reasons=[v.reason for v in job.verdicts],
            verdicts=[convert.verdict(v) for v in job.verdicts],
            history=[convert.job_event(e) for e in events],
        )


def pool_info(status: PoolStatus, record: PoolRecord | None, jobs_active: int) -> pb.PoolInfo:
    """A pool as the loop last saw it, with the admin's drain from the store."""
    nodes = status.nodes or ()
    usable = [n for n in nodes if n.schedulable]
    if record is not None and record.drained:
        state, reason = PoolState.DRAINED, record.drain_reason or "drained"
    elif status.reachable:
        state, reason = PoolState.UP, status.error
    else:
        state, reason = PoolState.UNREACHABLE, status.error
    return pb.PoolInfo(
        name=status.name,
        kind=status.kind,
        transport=status.transport,
        state=state.value,
        reason=reason,
        partition=status.partition or "",
        nodes_total=len(nodes),
        nodes_idle=sum(
            1 for n in usable if n.gpus_free == n.gpus_total and n.cpus_free == n.cpus_total
        ),
        gpus_total=sum(n.gpus_total for n in nodes),
        gpus_free=sum(n.gpus_free for n in usable),
        max_gpus_per_node=max((n.gpus_total for n in nodes), default=0),
        # A node with GPUs of several types reports them joined ("a100,v100"): each is listed.
        gpu_types=sorted({t for n in nodes for t in n.gpu_type.split(",") if t}),
        features=sorted({f for n in nodes for f in n.features}),
        price_per_gpu_hour=status.price_per_gpu_hour,
        weight=status.weight,
        jobs_active=jobs_active,
        updated_at=convert.timestamp(status.updated_at),
    )


class AdminServicer(_Served, pb_grpc.AdminServicer):
    async def _pool_infos(self, names: tuple[str, ...] | None = None) -> list[pb.PoolInfo]:
        records = await _db(self.store.pools)
        counts: dict[str, int] = {}
        for job in await _db(self.store.active_jobs):
            if job.pool:
                counts[job.pool] = counts.get(job.pool, 0) + 1
        return [
            pool_info(status, records.get(status.name), counts.get(status.name, 0))
            for status in self.loop.pool_statuses()
            if names is None or status.name in names
        ]

    async def ListPools(self, request: pb.ListPoolsRequest, context: Any) -> pb.ListPoolsResponse:
        await self._authenticate(context, "ListPools", request)
        return pb.ListPoolsResponse(pools=await self._pool_infos())

    async def _set_drained(
        self, rpc: str, request: pb.DrainPoolRequest | pb.ResumePoolRequest, context: Any
    ) -> pb.PoolInfo:
        caller = await self._authenticate(context, rpc, request)
        name = request.name
        if isinstance(request, pb.DrainPoolRequest):
            drained, reason = True, request.reason or "drained by admin"
        else:
            drained, reason = False, ""
        if caller.user not in self.config.server.admins:
            admins = ", ".join(self.config.server.admins)
            await abort(
                context,
                grpc.StatusCode.PERMISSION_DENIED,
                f"only admins ({admins}) may drain or resume pools",
            )
        try:
            validate.pool_name(name)
        except InvalidArgument as exc:
            await _invalid(context, exc)
        pools = self.loop.pool_names()
        if name not in pools:
            await abort(
                context,
                grpc.StatusCode.NOT_FOUND,
                f"no pool named {name}; pools: {', '.join(pools)}",
            )
        try:
            await _db(self.store.set_pool_drained, name, drained, reason, utcnow())
        except UnknownPool:
            await abort(context, grpc.StatusCode.NOT_FOUND, f"no pool named {name}")
        log.info("pool.drained" if drained else "pool.resumed", pool=name, reason=reason or None)
        self.loop.wake()  # the next pass reads the drain from the store
        (info,) = await self._pool_infos((name,))
        return info

    async def DrainPool(self, request: pb.DrainPoolRequest, context: Any) -> pb.PoolInfo:
        return await self._set_drained("DrainPool", request, context)

    async def ResumePool(self, request: pb.ResumePoolRequest, context: Any) -> pb.PoolInfo:
        return await self._set_drained("ResumePool", request, context)
