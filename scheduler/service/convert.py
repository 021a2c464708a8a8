"""Domain values -> proto messages. Pure."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Final

from google.protobuf.timestamp_pb2 import Timestamp

from scheduler.domain import Attempt, Event, Job, JobRequest, PoolVerdict
from scheduler.proto_gen.sfed.v1 import sfed_pb2 as pb

__all__ = [
    "attempt_info",
    "from_timestamp",
    "job_event",
    "job_info",
    "job_spec",
    "timestamp",
    "verdict",
]

# Request fields whose proto field differs in name or form; every other field has a JobSpec
# field of the same name (None -> unset or "", a mapping -> a map field).
_SPEC_SPECIAL: Final = frozenset({"script", "gpus_per_node"})
_SPEC_FIELDS: Final = tuple(
    f.name for f in dataclasses.fields(JobRequest) if f.name not in _SPEC_SPECIAL
)


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
        gres=f"gpu:{request.gpus_per_node}" if request.gpus_per_node else "",
    )
    for name in _SPEC_FIELDS:
        value = getattr(request, name)
        if value is None:
            continue  # optional fields stay unset; strings stay ""
        if isinstance(value, Mapping):
            getattr(spec, name).update(value)
        else:
            setattr(spec, name, value)
    return spec


def verdict(value: PoolVerdict) -> pb.PoolVerdict:
    return pb.PoolVerdict(pool=value.pool, fits=value.fits, reason=value.reason)


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
        outcome=attempt.outcome.value if attempt.outcome else "",
    )
    if attempt.exit_code is not None:
        info.exit_code = attempt.exit_code
    if attempt.exit_signal is not None:
        info.exit_signal = attempt.exit_signal
    return info


def job_info(job: Job, attempts: Sequence[Attempt] = (), *, private: bool = False) -> pb.JobInfo:
    """The job as the API shows it; its environment only with `private` (for its owner and
    the admins: see scheduler.service.access). The script never: only its hash and size."""
    request = job.request if private else replace(job.request, environment={})
    info = pb.JobInfo(
        id=job.id,
        user=job.user,
        state=job.state.value,
        spec=job_spec(request),
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
    if job.exit_signal is not None:
        info.exit_signal = job.exit_signal
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
