"""Rows <-> domain values, and the few writes every Store transaction shares: locking rows,
appending events, persisting what the job lifecycle decided. Pure SQLAlchemy, no engine."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from scheduler import lifecycle
from scheduler.domain import (
    Attempt,
    AttemptState,
    Event,
    Job,
    JobState,
    NodeSnapshot,
    Outcome,
    PoolVerdict,
)
from scheduler.spec import from_spec
from scheduler.store.errors import UnknownJob, UnknownPool
from scheduler.store.models import AttemptRow, EventRow, JobRow, PoolRow
from scheduler.store.records import PoolRecord

__all__ = [
    "append_event",
    "attempt_of",
    "event_of",
    "job_of",
    "lock_attempt",
    "lock_job",
    "lock_pool",
    "persist",
    "pool_of",
    "utc",
    "utc_or_none",
    "verdict_rows",
]

_NODE_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(NodeSnapshot))


def utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: the store needs aware datetimes")
    return value.astimezone(UTC)


def utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def lock_job(s: Session, job_id: int) -> JobRow:
    row = s.get(JobRow, job_id, with_for_update=True)
    if row is None:
        raise UnknownJob(f"job {job_id} does not exist")
    return row


def lock_attempt(s: Session, job_id: int, number: int) -> tuple[JobRow, AttemptRow]:
    job = lock_job(s, job_id)  # always the job first, then the attempt: no deadlock
    row = s.get(AttemptRow, (job_id, number), with_for_update=True)
    if row is None:
        raise UnknownJob(f"job {job_id} has no attempt {number}")
    return job, row


def lock_pool(s: Session, name: str) -> PoolRow:
    row = s.get(PoolRow, name, with_for_update=True)
    if row is None:
        raise UnknownPool(f"no pool named {name}")
    return row


def append_event(
    s: Session,
    job_id: int,
    at: datetime,
    kind: str,
    message: str,
    *,
    pool: str | None = None,
    attempt: int | None = None,
) -> None:
    """Add one event. The only way the store writes events: there is no update or delete."""
    s.add(EventRow(job_id=job_id, at=at, kind=kind, message=message, pool=pool, attempt=attempt))


# Job fields a lifecycle step may change; the request and the keys never change.
_JOB_MOVES: Final = (
    "state",
    "pool",
    "remote_id",
    "attempt",
    "exit_code",
    "exit_signal",
    "reason",
    "cancel_requested",
    "started_at",
    "ended_at",
    "updated_at",
)
_ATTEMPT_MOVES: Final = (
    "pool",
    "remote_id",
    "state",
    "created_at",
    "started_at",
    "ended_at",
    "exit_code",
    "exit_signal",
    "reason",
    "nodelist",
    "outcome",
)


def persist(
    s: Session, job: JobRow, attempt: AttemptRow | None, step: lifecycle.Step, now: datetime
) -> None:
    """Write what the lifecycle decided into the locked rows, with its event."""
    for name in _JOB_MOVES:
        value = getattr(step.job, name)
        setattr(job, name, value.value if isinstance(value, enum.Enum) else value)
    if step.job.verdicts != _verdicts(job.verdicts):
        job.verdicts = verdict_rows(step.job.verdicts) or None
    if attempt is not None and step.attempt is not None:
        for name in _ATTEMPT_MOVES:
            value = getattr(step.attempt, name)
            setattr(attempt, name, value.value if isinstance(value, enum.Enum) else value)
    if step.note is not None:
        note = step.note
        append_event(s, job.id, now, note.kind, note.message, pool=note.pool, attempt=note.attempt)


def verdict_rows(verdicts: Sequence[PoolVerdict]) -> list[list[Any]]:
    return [[v.pool, v.fits, v.reason] for v in verdicts]


def _verdicts(rows: Sequence[Sequence[Any]] | None) -> tuple[PoolVerdict, ...]:
    return tuple(PoolVerdict(str(p), bool(f), str(r)) for p, f, r in rows or ())


def job_of(row: JobRow) -> Job:
    return Job(
        id=row.id,
        user=row.user,
        request=from_spec(row.script, row.spec),
        state=JobState(row.state),
        submitted_at=row.submitted_at,
        updated_at=row.updated_at,
        pool=row.pool,
        remote_id=row.remote_id,
        attempt=row.attempt,
        exit_code=row.exit_code,
        exit_signal=row.exit_signal,
        reason=row.reason,
        cancel_requested=row.cancel_requested,
        started_at=row.started_at,
        ended_at=row.ended_at,
        client_key=row.client_key,
        verdicts=_verdicts(row.verdicts),
    )


def attempt_of(row: AttemptRow) -> Attempt:
    return Attempt(
        job_id=row.job_id,
        number=row.number,
        pool=row.pool,
        state=AttemptState(row.state),
        created_at=row.created_at,
        remote_id=row.remote_id,
        started_at=row.started_at,
        ended_at=row.ended_at,
        exit_code=row.exit_code,
        exit_signal=row.exit_signal,
        reason=row.reason,
        nodelist=row.nodelist,
        outcome=Outcome(row.outcome) if row.outcome else None,
    )


def event_of(row: EventRow) -> Event:
    return Event(
        id=row.id,
        job_id=row.job_id,
        at=row.at,
        kind=row.kind,
        message=row.message,
        pool=row.pool,
        attempt=row.attempt,
    )


def pool_of(row: PoolRow) -> PoolRecord:
    capacity = None
    if row.capacity is not None:
        capacity = tuple(
            NodeSnapshot(**{k: v for k, v in node.items() if k in _NODE_FIELDS})
            for node in row.capacity
        )
    return PoolRecord(
        name=row.name,
        drained=row.drained,
        drain_reason=row.drain_reason,
        reachable=row.reachable,
        unreachable_reason=row.unreachable_reason,
        updated_at=row.updated_at,
        capacity=capacity,
    )
