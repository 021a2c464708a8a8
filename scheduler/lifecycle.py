"""The job's life: given a job, its current attempt and what happened, what comes next. Pure.

Every rule of how a federation job moves lives here and nowhere else: the store loads the
rows (locked), calls one of these functions and writes the values it returns; the loop and the
pools only report facts (`Report`, an `Outcome`). No I/O, no store, no clock: `now` is given.

    fact                                   attempt            job
    pool: PENDING / RUNNING                PENDING / RUNNING  PLACED / RUNNING
    pool: ended, outcome O                 ENDINGS[O]         ENDINGS[O]
    pool forgot a job asked to cancel      CANCELLED          CANCELLED
    submission refused (REFUSED) or        FAILED             PENDING while tries are left,
      never arrived (NOT_SUBMITTED)                           else FAILED with the pool's words
      ... never arrived after a cancel     CANCELLED          CANCELLED
    cancel requested, job PENDING          -                  CANCELLED at once
    cancel requested, job on a pool        -                  marked; the loop cancels it there

Only the job's current attempt moves the job; a terminal attempt or job never moves again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

from scheduler.domain import (
    DEFAULT_OUTCOME,
    TERMINAL_ATTEMPT_STATES,
    TERMINAL_JOB_STATES,
    Attempt,
    AttemptState,
    Job,
    JobState,
    Outcome,
    PoolVerdict,
    RemoteJob,
)

__all__ = [
    "ENDINGS",
    "JOB_STATE_OF",
    "Ending",
    "Note",
    "Policy",
    "Report",
    "Stale",
    "Step",
    "begin",
    "observe",
    "remote_accepted",
    "request_cancel",
    "submit_failed",
    "submit_failures",
]


class Stale(Exception):
    """The job is no longer in a state the step applies to (e.g. cancelled meanwhile)."""


@dataclass(frozen=True, slots=True)
class Policy:
    """The federation's knobs on the job's life."""

    max_submit_tries: int = 3  # submissions in a row that may fail before the job does


@dataclass(frozen=True, slots=True)
class Ending:
    """What an outcome makes of the attempt, and of the job when it is its current attempt."""

    attempt: AttemptState
    job: JobState


ENDINGS: Final[Mapping[Outcome, Ending]] = {
    Outcome.COMPLETED: Ending(AttemptState.COMPLETED, JobState.COMPLETED),
    Outcome.FAILED: Ending(AttemptState.FAILED, JobState.FAILED),
    Outcome.CANCELLED: Ending(AttemptState.CANCELLED, JobState.CANCELLED),
    Outcome.TIMEOUT: Ending(AttemptState.FAILED, JobState.FAILED),
    Outcome.OUT_OF_MEMORY: Ending(AttemptState.FAILED, JobState.FAILED),
    Outcome.PREEMPTED: Ending(AttemptState.FAILED, JobState.FAILED),
    Outcome.NODE_FAIL: Ending(AttemptState.FAILED, JobState.FAILED),
    Outcome.EVICTED: Ending(AttemptState.FAILED, JobState.FAILED),
    Outcome.LOST: Ending(AttemptState.LOST, JobState.FAILED),
    # The submission's own failures: the job is placed again (see submit_failed).
    Outcome.REFUSED: Ending(AttemptState.FAILED, JobState.PENDING),
    Outcome.NOT_SUBMITTED: Ending(AttemptState.FAILED, JobState.PENDING),
}

# The job follows its current attempt while the attempt has not ended.
JOB_STATE_OF: Final[Mapping[AttemptState, JobState]] = {
    AttemptState.SUBMITTING: JobState.PLACED,
    AttemptState.PENDING: JobState.PLACED,
    AttemptState.RUNNING: JobState.RUNNING,
}


@dataclass(frozen=True, slots=True)
class Report:
    """What a pool (or the loop, for a job a pool forgot) says of an attempt.

    Fields left at None/"" keep what is recorded. A terminal `state` comes with an outcome
    (the state's default when none is given); the outcome, not the state, decides the end.
    """

    state: AttemptState
    outcome: Outcome | None = None
    exit_code: int | None = None
    reason: str = ""
    nodelist: str = ""
    started_at: datetime | None = None
    ended_at: datetime | None = None
    exit_signal: int | None = None

    def __post_init__(self) -> None:
        if self.outcome is None and self.state in DEFAULT_OUTCOME:
            object.__setattr__(self, "outcome", DEFAULT_OUTCOME[self.state])

    @classmethod
    def of(cls, remote: RemoteJob) -> Report:
        return cls(
            state=remote.state,
            outcome=remote.outcome,
            exit_code=remote.exit_code,
            exit_signal=remote.exit_signal,
            reason=remote.reason,
            nodelist=remote.nodelist,
            started_at=remote.started_at,
            ended_at=remote.ended_at,
        )

    @classmethod
    def lost(cls, reason: str) -> Report:
        return cls(AttemptState.LOST, Outcome.LOST, reason=reason)


@dataclass(frozen=True, slots=True)
class Note:
    """One event for the job's history."""

    kind: str
    message: str
    pool: str | None = None
    attempt: int | None = None


@dataclass(frozen=True, slots=True)
class Step:
    """The job and attempt after a fact, and the event that records it."""

    job: Job
    attempt: Attempt | None
    note: Note | None


def begin(
    job: Job, pool: str, verdicts: tuple[PoolVerdict, ...], reason: str, now: datetime
) -> Step:
    """Place a PENDING job on `pool`: a new SUBMITTING attempt, the job PLACED.

    Raises Stale when the job is no longer PENDING or a cancel was requested.
    """
    if job.state is not JobState.PENDING or job.cancel_requested:
        why = "cancel requested" if job.cancel_requested else job.state.value
        raise Stale(f"job {job.id} cannot be placed: {why}")
    number = job.attempt + 1
    attempt = Attempt(
        job_id=job.id, number=number, pool=pool, state=AttemptState.SUBMITTING, created_at=now
    )
    placed = replace(
        job,
        state=JobState.PLACED,
        pool=pool,
        attempt=number,
        remote_id=None,
        reason=reason,
        verdicts=verdicts,
        updated_at=now,
    )
    return Step(placed, attempt, Note("placed", reason, pool, number))


def remote_accepted(job: Job, attempt: Attempt, remote_id: str, now: datetime) -> Step | None:
    """The pool took the attempt as its job `remote_id`: SUBMITTING becomes PENDING.

    None when it is already recorded.
    """
    submitting = attempt.state is AttemptState.SUBMITTING
    if attempt.remote_id == remote_id and not submitting:
        return None
    after = replace(
        attempt,
        remote_id=remote_id,
        state=AttemptState.PENDING if submitting else attempt.state,
    )
    if _current(job, attempt):
        job = replace(job, remote_id=remote_id, updated_at=now)
    note = Note("submitted_remote", f"{attempt.pool} job {remote_id}", attempt.pool, attempt.number)
    return Step(job, after, note)


def observe(job: Job, attempt: Attempt, report: Report, now: datetime) -> Step | None:
    """What a pool says of an attempt; the job follows when it is its current attempt.

    RUNNING without a start time starts now; an end without an end time ends now. None when
    nothing changes, and always for an attempt that has already ended.
    """
    if attempt.state in TERMINAL_ATTEMPT_STATES:
        return None
    if report.outcome is Outcome.LOST and job.cancel_requested:
        # The pool forgot a job it was asked to cancel: the cancel took effect.
        report = Report(AttemptState.CANCELLED, reason=f"cancelled ({report.reason})")
    ending = ENDINGS[report.outcome] if report.outcome is not None else None
    state = ending.attempt if ending is not None else report.state
    after = replace(
        attempt,
        state=state,
        outcome=report.outcome if ending is not None else None,
        exit_code=attempt.exit_code if report.exit_code is None else report.exit_code,
        exit_signal=attempt.exit_signal if report.exit_signal is None else report.exit_signal,
        reason=report.reason or attempt.reason,
        nodelist=report.nodelist or attempt.nodelist,
        started_at=report.started_at or attempt.started_at,
        ended_at=report.ended_at or attempt.ended_at,
    )
    if state is AttemptState.RUNNING and after.started_at is None:
        after = replace(after, started_at=now)
    if state in TERMINAL_ATTEMPT_STATES and after.ended_at is None:
        after = replace(after, ended_at=now)
    if after == attempt:
        return None
    if _current(job, attempt):
        target = ending.job if ending is not None else JOB_STATE_OF[state]
        job = _follow(job, after, target, report.reason, now)
    message = _state_message(after, report.reason)
    return Step(job, after, Note("state", message, attempt.pool, attempt.number))


def submit_failures(attempts: Sequence[Attempt]) -> int:
    """How many of the job's latest attempts in a row failed to be submitted."""
    count = 0
    for attempt in reversed(attempts):
        if attempt.outcome not in (Outcome.REFUSED, Outcome.NOT_SUBMITTED):
            break
        count += 1
    return count


def submit_failed(
    job: Job,
    attempt: Attempt,
    outcome: Outcome,
    reason: str,
    now: datetime,
    policy: Policy,
    earlier: Sequence[Attempt] = (),
) -> Step | None:
    """The submission of `attempt` failed (REFUSED by the pool, or NOT_SUBMITTED: it never
    arrived). The job goes back to the queue, or fails once `policy.max_submit_tries`
    submissions in a row have failed (`earlier`: the job's attempts before this one); a job
    whose cancel was requested is CANCELLED instead. What the attempt last said (e.g. why
    the pool did not answer) is kept in the reason. None for an attempt that has ended.
    """
    if outcome not in (Outcome.REFUSED, Outcome.NOT_SUBMITTED):
        raise ValueError(f"not a submission failure: {outcome}")
    if attempt.state in TERMINAL_ATTEMPT_STATES:
        return None
    if outcome is Outcome.NOT_SUBMITTED and job.cancel_requested:
        # Nothing ever ran: the cancel simply holds.
        cancelled = Report(AttemptState.CANCELLED, reason="cancelled before it started")
        return observe(job, attempt, cancelled, now)
    if attempt.reason:
        reason = f"{reason} ({attempt.reason})"
    after = replace(
        attempt, state=AttemptState.FAILED, outcome=outcome, reason=reason, ended_at=now
    )
    message = reason
    if _current(job, attempt):
        job = replace(job, updated_at=now, reason=reason, pool=None, remote_id=None)
        again = submit_failures(earlier) + 1 < policy.max_submit_tries
        if job.cancel_requested:
            job = replace(job, state=JobState.CANCELLED, ended_at=now)
            message += "; job cancelled as requested"
        elif again:  # the verdicts that placed it no longer hold
            job = replace(job, state=JobState.PENDING, verdicts=())
            message += "; back in the queue"
        else:
            job = replace(job, state=JobState.FAILED, ended_at=now)
            message += "; job failed"
    return Step(job, after, Note("aborted", message, attempt.pool, attempt.number))


def request_cancel(job: Job, by: str, now: datetime) -> Step | None:
    """A PENDING job is CANCELLED at once; one on a pool is marked for the loop to cancel
    there. None for a job that has ended or is already marked."""
    if job.state is JobState.PENDING:
        after = replace(
            job,
            state=JobState.CANCELLED,
            cancel_requested=True,
            ended_at=now,
            updated_at=now,
            reason=f"cancelled by {by}",
        )
        return Step(after, None, Note("cancelled", f"cancelled by {by} before it was placed"))
    if job.state in TERMINAL_JOB_STATES or job.cancel_requested:
        return None
    after = replace(job, cancel_requested=True, updated_at=now)
    note = Note("cancel_requested", f"cancel requested by {by}", job.pool, job.attempt)
    return Step(after, None, note)


def _current(job: Job, attempt: Attempt) -> bool:
    """Whether the attempt still speaks for the job."""
    return job.attempt == attempt.number and job.state not in TERMINAL_JOB_STATES


def _follow(job: Job, attempt: Attempt, state: JobState, reason: str, now: datetime) -> Job:
    """The job after its current attempt; a new state drops the previous state's reason."""
    return replace(
        job,
        state=state,
        reason=reason if reason or job.state is not state else job.reason,
        pool=attempt.pool,
        remote_id=attempt.remote_id,
        exit_code=attempt.exit_code,
        exit_signal=attempt.exit_signal,
        started_at=job.started_at or attempt.started_at,
        ended_at=(attempt.ended_at or now) if state in TERMINAL_JOB_STATES else job.ended_at,
        updated_at=now,
    )


def _state_message(attempt: Attempt, reason: str) -> str:
    """E.g. "RUNNING on beta (job 123, nodes beta-n[1-2])", "FAILED exit 3", "LOST: why"."""
    text = attempt.state.value
    if attempt.state in TERMINAL_ATTEMPT_STATES:
        if attempt.exit_code is not None:
            text += f" exit {attempt.exit_code}"
    else:
        details = [f"job {attempt.remote_id}"] if attempt.remote_id else []
        if attempt.nodelist:
            details.append(f"nodes {attempt.nodelist}")
        text += f" on {attempt.pool}" + (f" ({', '.join(details)})" if details else "")
    return f"{text}: {reason}" if reason else text
