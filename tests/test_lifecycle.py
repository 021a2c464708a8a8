"""Tests of scheduler.lifecycle: every rule of a job's life as a row of a table, no database."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from scheduler import lifecycle
from scheduler.domain import (
    Attempt,
    AttemptState,
    Job,
    JobState,
    Outcome,
    PoolVerdict,
    RemoteJob,
)
from scheduler.lifecycle import Policy, Report
from tests.fixtures.jobs import at, attempt, job, on_pool

NOW = at(10)


@dataclass(frozen=True)
class Row:
    """One fact about a job's current attempt, and what must follow."""

    name: str
    given: tuple[Job, Attempt]
    report: Report
    job_state: JobState
    attempt_state: AttemptState
    outcome: Outcome | None = None

    def __str__(self) -> str:
        return self.name


RUNNING = on_pool(AttemptState.RUNNING)
PENDING = on_pool(AttemptState.PENDING)

POOL_REPORTS = [
    Row("pending stays placed", PENDING, Report(AttemptState.PENDING, reason="Priority"),
        JobState.PLACED, AttemptState.PENDING),
    Row("running starts the job", PENDING, Report(AttemptState.RUNNING),
        JobState.RUNNING, AttemptState.RUNNING),
    Row("completed", RUNNING, Report(AttemptState.COMPLETED, exit_code=0),
        JobState.COMPLETED, AttemptState.COMPLETED, Outcome.COMPLETED),
    Row("script failed", RUNNING, Report(AttemptState.FAILED, exit_code=3),
        JobState.FAILED, AttemptState.FAILED, Outcome.FAILED),
    Row("cancelled on the pool", RUNNING, Report(AttemptState.CANCELLED),
        JobState.CANCELLED, AttemptState.CANCELLED, Outcome.CANCELLED),
    Row("time limit", RUNNING, Report(AttemptState.FAILED, Outcome.TIMEOUT),
        JobState.FAILED, AttemptState.FAILED, Outcome.TIMEOUT),
    Row("out of memory", RUNNING, Report(AttemptState.FAILED, Outcome.OUT_OF_MEMORY),
        JobState.FAILED, AttemptState.FAILED, Outcome.OUT_OF_MEMORY),
    Row("preempted", RUNNING, Report(AttemptState.FAILED, Outcome.PREEMPTED),
        JobState.FAILED, AttemptState.FAILED, Outcome.PREEMPTED),
    Row("node failure", RUNNING, Report(AttemptState.FAILED, Outcome.NODE_FAIL),
        JobState.FAILED, AttemptState.FAILED, Outcome.NODE_FAIL),
    Row("evicted", RUNNING, Report(AttemptState.FAILED, Outcome.EVICTED),
        JobState.FAILED, AttemptState.FAILED, Outcome.EVICTED),
    Row("lost by the pool", RUNNING, Report.lost("beta no longer knows job 123"),
        JobState.FAILED, AttemptState.LOST, Outcome.LOST),
]  # fmt: skip


@pytest.mark.parametrize("row", POOL_REPORTS, ids=str)
def test_pool_report_moves_attempt_and_job(row: Row) -> None:
    """Each pool report gives the attempt and job states (and outcome) of its row."""
    before_job, before_attempt = row.given
    step = lifecycle.observe(before_job, before_attempt, row.report, NOW)
    assert step is not None and step.attempt is not None
    assert (step.job.state, step.attempt.state, step.attempt.outcome) == (
        row.job_state,
        row.attempt_state,
        row.outcome,
    )


@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_outcome_has_an_ending(outcome: Outcome) -> None:
    """No outcome is left without a rule for the attempt and the job."""
    assert outcome in lifecycle.ENDINGS


def test_ending_sets_end_time_and_exit_code() -> None:
    """An end without a time ends now; the job takes the attempt's exit code and end."""
    before_job, before_attempt = RUNNING
    step = lifecycle.observe(
        before_job, before_attempt, Report(AttemptState.FAILED, exit_code=3), NOW
    )
    assert step is not None and step.attempt is not None
    assert (step.attempt.ended_at, step.job.ended_at, step.job.exit_code) == (NOW, NOW, 3)


def test_running_without_start_time_starts_now() -> None:
    """RUNNING with no start time from the pool records now as the start, for both."""
    before_job, before_attempt = PENDING
    step = lifecycle.observe(before_job, before_attempt, Report(AttemptState.RUNNING), NOW)
    assert step is not None and step.attempt is not None
    assert (step.attempt.started_at, step.job.started_at) == (NOW, NOW)


def test_same_report_twice_is_no_step() -> None:
    """A report that changes nothing gives no step (so no event)."""
    before_job, before_attempt = RUNNING
    assert lifecycle.observe(before_job, before_attempt, Report(AttemptState.RUNNING), NOW) is None


def test_ended_attempt_never_moves() -> None:
    """A report on an attempt that has ended gives no step."""
    done = attempt(state=AttemptState.COMPLETED, outcome=Outcome.COMPLETED, ended_at=at(5))
    assert lifecycle.observe(job(), done, Report(AttemptState.RUNNING), NOW) is None


def test_report_on_an_earlier_attempt_leaves_the_job() -> None:
    """An earlier attempt's report moves that attempt only, not the job on its new one."""
    current_job, _ = on_pool(AttemptState.RUNNING, number=2, pool="alpha")
    old = attempt(1, "beta", state=AttemptState.PENDING, remote_id="9")
    step = lifecycle.observe(current_job, old, Report(AttemptState.CANCELLED), NOW)
    assert step is not None and step.job == current_job


def test_new_state_drops_the_previous_reason() -> None:
    """Moving to a new state without words clears the job's old reason."""
    before_job, before_attempt = PENDING
    before_job = replace(before_job, reason="Priority")
    step = lifecycle.observe(before_job, before_attempt, Report(AttemptState.RUNNING), NOW)
    assert step is not None and step.job.reason == ""


def test_state_event_names_pool_remote_id_and_nodes() -> None:
    """The "state" event says where the attempt runs."""
    before_job, before_attempt = PENDING
    report = Report(AttemptState.RUNNING, nodelist="beta-n[1-2]")
    step = lifecycle.observe(before_job, before_attempt, report, NOW)
    assert step is not None and step.note is not None
    assert (step.note.kind, step.note.message) == (
        "state",
        "RUNNING on beta (job 123, nodes beta-n[1-2])",
    )


def test_pool_forgetting_a_job_asked_to_cancel_cancels_it() -> None:
    """A job the pool no longer knows after a cancel was requested ends CANCELLED, not lost."""
    before_job, before_attempt = on_pool(AttemptState.RUNNING, cancel_requested=True)
    step = lifecycle.observe(before_job, before_attempt, Report.lost("gone"), NOW)
    assert step is not None and step.attempt is not None
    assert (step.job.state, step.attempt.state, step.attempt.outcome) == (
        JobState.CANCELLED,
        AttemptState.CANCELLED,
        Outcome.CANCELLED,
    )


def test_report_of_remote_job_keeps_its_outcome() -> None:
    """Report.of carries a pool's outcome, not only its words."""
    remote = RemoteJob("123", AttemptState.FAILED, outcome=Outcome.PREEMPTED, reason="preempted")
    assert Report.of(remote).outcome is Outcome.PREEMPTED


# -- submission failures ------------------------------------------------------------------


def ended(*outcomes: Outcome) -> tuple[Attempt, ...]:
    """Earlier attempts of the job, numbered from 1, that ended with these outcomes."""
    return tuple(
        attempt(n, state=AttemptState.FAILED, outcome=o, ended_at=at(n))
        for n, o in enumerate(outcomes, 1)
    )


REFUSED, NOT_SUBMITTED, PREEMPTED = Outcome.REFUSED, Outcome.NOT_SUBMITTED, Outcome.PREEMPTED


@dataclass(frozen=True)
class AbortRow:
    name: str
    earlier: tuple[Attempt, ...]
    outcome: Outcome
    cancel_requested: bool
    job_state: JobState
    attempt_state: AttemptState
    kind: str

    def __str__(self) -> str:
        return self.name


ABORTS = [
    AbortRow("refused, tries left: back in the queue", (), REFUSED, False,
             JobState.PENDING, AttemptState.FAILED, "aborted"),
    AbortRow("refused on the last try: job fails", ended(REFUSED, REFUSED), REFUSED, False,
             JobState.FAILED, AttemptState.FAILED, "aborted"),
    AbortRow("never arrived: back in the queue", (), NOT_SUBMITTED, False,
             JobState.PENDING, AttemptState.FAILED, "aborted"),
    AbortRow("never arrived on the last try: job fails", ended(REFUSED, NOT_SUBMITTED),
             NOT_SUBMITTED, False, JobState.FAILED, AttemptState.FAILED, "aborted"),
    AbortRow("only failures in a row count", ended(REFUSED, PREEMPTED, REFUSED), REFUSED, False,
             JobState.PENDING, AttemptState.FAILED, "aborted"),
    AbortRow("refused after a cancel: cancelled", (), REFUSED, True,
             JobState.CANCELLED, AttemptState.FAILED, "aborted"),
    AbortRow("never arrived after a cancel: cancelled before it started", (),
             NOT_SUBMITTED, True, JobState.CANCELLED, AttemptState.CANCELLED, "state"),
]  # fmt: skip


@pytest.mark.parametrize("row", ABORTS, ids=str)
def test_submission_failure(row: AbortRow) -> None:
    """A failed submission moves the job and attempt as its row says."""
    before_job, before_attempt = on_pool(
        AttemptState.SUBMITTING,
        number=len(row.earlier) + 1,
        cancel_requested=row.cancel_requested,
    )
    step = lifecycle.submit_failed(
        before_job, before_attempt, row.outcome, "why", NOW, Policy(), row.earlier
    )
    assert step is not None and step.attempt is not None and step.note is not None
    assert (step.job.state, step.attempt.state, step.note.kind) == (
        row.job_state,
        row.attempt_state,
        row.kind,
    )


def test_failed_job_keeps_why_the_pool_did_not_answer() -> None:
    """The attempt's last words (no answer to sbatch) stay in the job's reason."""
    before_job, before_attempt = on_pool(AttemptState.SUBMITTING, number=3)
    before_attempt = replace(before_attempt, reason="no answer to sbatch: timeout")
    step = lifecycle.submit_failed(
        before_job,
        before_attempt,
        NOT_SUBMITTED,
        "the submission never reached beta",
        NOW,
        Policy(),
        ended(REFUSED, REFUSED),
    )
    assert step is not None
    assert step.job.reason == "the submission never reached beta (no answer to sbatch: timeout)"


def test_back_in_the_queue_clears_pool_remote_id_and_verdicts() -> None:
    """A job placed again no longer names the pool or the verdicts that placed it."""
    verdicts = (PoolVerdict("beta", True, "beta: fits"),)
    before_job, before_attempt = on_pool(AttemptState.SUBMITTING, verdicts=verdicts)
    step = lifecycle.submit_failed(before_job, before_attempt, Outcome.REFUSED, "no", NOW, Policy())
    assert step is not None
    assert (step.job.pool, step.job.remote_id, step.job.verdicts) == (None, None, ())


def test_submission_failure_needs_a_submission_outcome() -> None:
    """Only REFUSED and NOT_SUBMITTED are submission failures."""
    before_job, before_attempt = on_pool(AttemptState.SUBMITTING)
    with pytest.raises(ValueError, match="not a submission failure"):
        lifecycle.submit_failed(before_job, before_attempt, Outcome.FAILED, "x", NOW, Policy())


def test_policy_sets_the_number_of_tries() -> None:
    """With max_submit_tries=5, a third refusal in a row still puts the job back in the queue."""
    before_job, before_attempt = on_pool(AttemptState.SUBMITTING, number=3)
    policy = Policy(max_submit_tries=5)
    step = lifecycle.submit_failed(
        before_job, before_attempt, REFUSED, "x", NOW, policy, ended(REFUSED, REFUSED)
    )
    assert step is not None and step.job.state is JobState.PENDING


# -- placing, accepting, cancelling --------------------------------------------------------


def test_begin_places_a_pending_job() -> None:
    """begin makes attempt job.attempt + 1 SUBMITTING and the job PLACED with the verdicts."""
    verdicts = (PoolVerdict("beta", True, "beta: fits"),)
    step = lifecycle.begin(job(attempt=2), "beta", verdicts, "placed on beta", NOW)
    assert step.attempt is not None
    assert (step.attempt.number, step.attempt.state) == (3, AttemptState.SUBMITTING)
    assert (step.job.state, step.job.pool, step.job.verdicts) == (JobState.PLACED, "beta", verdicts)


@pytest.mark.parametrize(
    "before",
    [job(state=JobState.RUNNING), job(cancel_requested=True), job(state=JobState.CANCELLED)],
    ids=["running", "cancel requested", "cancelled"],
)
def test_begin_refuses_a_job_that_is_not_waiting(before: Job) -> None:
    """Only a PENDING job without a cancel request can be placed."""
    with pytest.raises(lifecycle.Stale):
        lifecycle.begin(before, "beta", (), "placed", NOW)


def test_remote_accepted_makes_the_attempt_pending() -> None:
    """The pool's id turns SUBMITTING into PENDING and reaches the job."""
    before_job, before_attempt = on_pool(AttemptState.SUBMITTING)
    step = lifecycle.remote_accepted(before_job, before_attempt, "77", NOW)
    assert step is not None and step.attempt is not None
    assert (step.attempt.state, step.attempt.remote_id, step.job.remote_id) == (
        AttemptState.PENDING,
        "77",
        "77",
    )


def test_remote_accepted_twice_is_no_step() -> None:
    """Recording the same remote id again changes nothing."""
    before_job, before_attempt = on_pool(AttemptState.PENDING)
    assert lifecycle.remote_accepted(before_job, before_attempt, "123", NOW) is None


@dataclass(frozen=True)
class CancelRow:
    name: str
    before: Job
    job_state: JobState | None  # None: no step
    kind: str = ""

    def __str__(self) -> str:
        return self.name


CANCELS = [
    CancelRow("pending: cancelled at once", job(), JobState.CANCELLED, "cancelled"),
    CancelRow("on a pool: marked for the loop", on_pool()[0], JobState.RUNNING,
              "cancel_requested"),
    CancelRow("already marked: nothing", on_pool(cancel_requested=True)[0], None),
    CancelRow("ended: nothing", job(state=JobState.COMPLETED), None),
]  # fmt: skip


@pytest.mark.parametrize("row", CANCELS, ids=str)
def test_request_cancel(row: CancelRow) -> None:
    """A cancel request moves the job as its row says."""
    step = lifecycle.request_cancel(row.before, "alice", NOW)
    if row.job_state is None:
        assert step is None
        return
    assert step is not None and step.note is not None
    assert (step.job.state, step.job.cancel_requested, step.note.kind) == (
        row.job_state,
        True,
        row.kind,
    )


def test_exit_signal_reaches_the_job() -> None:
    """The signal that killed the script is kept on the attempt and the job."""
    before_job, before_attempt = RUNNING
    report = Report(AttemptState.FAILED, exit_code=137, exit_signal=9)
    step = lifecycle.observe(before_job, before_attempt, report, NOW)
    assert step is not None and step.attempt is not None
    assert (step.attempt.exit_signal, step.job.exit_signal, step.job.exit_code) == (9, 9, 137)
