"""Domain values -> proto messages. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from scheduler.domain import Attempt, Event, Job, JobRequest
from scheduler.proto_gen.sfed.v1 import sfed_pb2 as pb

__all__ = ["attempt_info", "from_timestamp", "job_event", "job_info", "job_spec", "timestamp"]


def timestamp(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


def from_timestamp(ts: Timestamp) -> datetime:
    return ts.ToDatetime(tzinfo=UTC)


def job_spec(request: JobRequest, *, with_script: bool = False) -> pb.JobSpec:
    spec = pb.JobSpec(
        script=request.script if with_script else b"",
        job_name=request.job_name,
        nodes=request.nodes,
        gres=f"gpu:{request.gpus_per_node}" if request.gpus_per_node else "",
        cpus_per_task=request.cpus_per_task,
        partition=request.partition or "",
        chdir=request.chdir or "",
        output=request.output or "",
        error=request.error or "",
        environment=dict(request.environment),
        requeue=request.requeue,
        priority=request.priority,
        separate_error=request.separate_error,
    )
    if request.ntasks is not None:
        spec.ntasks = request.ntasks
    if request.mem_per_node_mb is not None:
        spec.mem_per_node_mb = request.mem_per_node_mb
    if request.time_limit_min is not None:
        spec.time_limit_min = request.time_limit_min
    return spec


def attempt_info(attempt: Attempt) -> pb.AttemptInfo:
    info = pb.AttemptInfo(
        number=attempt.number,
        pool=attempt.pool,
        remote_id=attempt.remote_id or "",
        state=attempt.state.value,
        reason=attempt.reason,
        nodelist=attempt.nodelist,
        created_at=timestamp(attempt.created_at),
        started_at=timestamp(attempt.started_at),
        ended_at=timestamp(attempt.ended_at),
    )
    if attempt.exit_code is not None:
        info.exit_code = attempt.exit_code
    return info


def job_info(job: Job, attempts: Sequence[Attempt] = ()) -> pb.JobInfo:
    info = pb.JobInfo(
        id=job.id,
        user=job.user,
        state=job.state.value,
        spec=job_spec(job.request),
        script_sha256=hashlib.sha256(job.request.script).hexdigest(),
        script_bytes=len(job.request.script),
        pool=job.pool or "",
        remote_id=job.remote_id or "",
        attempt=job.attempt,
        reason=job.reason,
        cancel_requested=job.cancel_requested,
        submitted_at=timestamp(job.submitted_at),
        started_at=timestamp(job.started_at),
        ended_at=timestamp(job.ended_at),
        attempts=[attempt_info(a) for a in attempts],
    )
    if job.exit_code is not None:
        info.exit_code = job.exit_code
    return info


def job_event(event: Event, job_state: str = "") -> pb.JobEvent:
    return pb.JobEvent(
        id=event.id,
        job_id=event.job_id,
        at=timestamp(event.at),
        kind=event.kind,
        message=event.message,
        pool=event.pool or "",
        attempt=event.attempt or 0,
        job_state=job_state,
    )
