"""Behaviour of Store, on SQLite and on Postgres (see conftest.py)."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import pytest

from scheduler import lifecycle
from scheduler.domain import AttemptState, Job, JobRequest, JobState, Outcome
from scheduler.store import PoolRecord, StaleJob, Store, UnknownJob, UnknownPool
from tests.fixtures.jobs import at, request
from tests.fixtures.nodes import node
from tests.store.builders import placed, running, submitted

# -- jobs: add, get ---------------------------------------------------------------------------


def test_add_job_returns_a_pending_job(store: Store) -> None:
    """add_job gives a PENDING job with an id, never placed, times set to `now`."""
    job = store.add_job("alice", request(), at(0))
    assert job.id >= 1
    assert (job.user, job.state, job.attempt, job.pool, job.remote_id) == (
        "alice",
        JobState.PENDING,
        0,
        None,
        None,
    )
    assert job.submitted_at == job.updated_at == at(0)
    assert (job.started_at, job.ended_at, job.exit_code, job.cancel_requested) == (
        None,
        None,
        None,
        False,
    )


def test_get_job_round_trips_every_request_field(store: Store) -> None:
    """Every JobRequest field comes back equal."""
    req = request(
        script=b"#!/bin/bash\n#SBATCH -N 2\nsrun train.py\n",
        job_name="train",
        nodes=2,
        ntasks=16,
        gpus_per_node=8,
        cpus_per_task=6,
        mem_per_node_mb=512_000,
        time_limit_min=90,
        partition="gpu",
        chdir="/home/alice/run",
        output="/home/alice/run/%j.out",
        error="/home/alice/run/%j.err",
        environment={"WANDB_MODE": "offline", "EMPTY": "", "UNICODÉ": "ü 日本"},
        requeue=True,
        priority=-5,
    )
    job = store.add_job("alice", req, at(0))
    assert store.get_job(job.id) == job
    assert job.request == req


@pytest.mark.parametrize(
    "script",
    [
        pytest.param("#!/bin/sh\necho 'héllo wörld ✓ 日本'\n".encode(), id="non-ascii"),
        pytest.param(b"#!/bin/sh\n\x00\x01\xff\xfe\r\n\x00", id="nul-and-invalid-utf8"),
        pytest.param(bytes(range(256)) * 4096, id="1MB"),
        pytest.param(b"", id="empty"),
    ],
)
def test_script_bytes_are_kept_exactly(store: Store, script: bytes) -> None:
    """The script comes back byte for byte."""
    job = store.add_job("alice", request(script=script), at(0))
    found = store.get_job(job.id)
    assert found is not None
    assert type(found.request.script) is bytes
    assert found.request.script == script


def test_get_job_of_unknown_id_is_none(store: Store) -> None:
    """get_job returns None for an id that does not exist."""
    assert store.get_job(424242) is None


def test_add_job_appends_a_submitted_event(store: Store) -> None:
    """The only event of a new job is "submitted", naming the user."""
    job = submitted(store, "bob")
    [event] = store.events(job.id)
    assert (event.kind, event.job_id, event.at, event.pool, event.attempt) == (
        "submitted",
        job.id,
        at(0),
        None,
        None,
    )
    assert "bob" in event.message


def test_returned_values_are_frozen_domain_objects(store: Store) -> None:
    """The store returns frozen dataclasses, not ORM rows."""
    job = placed(store)
    values = [job, *store.attempts(job.id), *store.events(job.id)]
    for value in values:
        assert dataclasses.is_dataclass(value)
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(value, dataclasses.fields(value)[0].name, 7)


def test_client_key_makes_add_job_idempotent(store: Store) -> None:
    """A second add_job with the same client key returns the first job and adds no event."""
    first = store.add_job("alice", request(), at(0), client_key="door/17/0")
    again = store.add_job("alice", request(), at(1), client_key="door/17/0")
    assert again == first and first.client_key == "door/17/0"
    assert len(store.list_jobs()) == 1
    assert [e.kind for e in store.events(first.id)] == ["submitted"]


def test_distinct_client_keys_make_distinct_jobs(store: Store) -> None:
    """Another key (e.g. the same front-door job after a restart) is another job."""
    first = store.add_job("alice", request(), at(0), client_key="door/17/0")
    second = store.add_job("alice", request(), at(0), client_key="door/17/1")
    assert first.id != second.id and store.job_by_key("door/17/1") == second


def test_key_prefix_finds_the_latest_run(store: Store) -> None:
    """A front-door job requeued twice resolves to its latest federation job."""
    store.add_job("alice", request(), at(0), client_key="door/17/0")
    latest = store.add_job("alice", request(), at(1), client_key="door/17/1")
    store.add_job("alice", request(), at(2), client_key="door/170/0")
    assert store.job_by_key_prefix("door/17/") == latest


def test_key_prefix_treats_like_wildcards_literally(store: Store) -> None:
    """'_' and '%' in a prefix match only themselves."""
    store.add_job("alice", request(), at(0), client_key="doorX17/0")
    assert store.job_by_key_prefix("door_17/") is None
    assert store.job_by_key_prefix("%") is None


def test_racing_retries_with_one_key_make_one_job(store: Store) -> None:
    """Four threads adding with one key concurrently all get the same single job."""
    start = threading.Barrier(4)

    def add(_: int) -> int:
        start.wait()
        return store.add_job("alice", request(), at(0), client_key="race").id

    with ThreadPoolExecutor(4) as pool:
        ids = set(pool.map(add, range(4)))
    assert len(ids) == 1 and len(store.list_jobs()) == 1


# -- jobs: listing ----------------------------------------------------------------------------


def _ids(jobs: list[Job]) -> list[int]:
    return [job.id for job in jobs]


def test_list_jobs_filters_by_user(store: Store) -> None:
    """Only the user's jobs are listed."""
    a1, _, a2 = submitted(store, "alice"), submitted(store, "bob"), submitted(store, "alice")
    assert _ids(store.list_jobs(user="alice")) == [a1.id, a2.id]
    assert store.list_jobs(user="nobody") == []


def test_list_jobs_filters_by_states(store: Store) -> None:
    """Only jobs in one of the given states are listed; an empty set matches none."""
    pending = submitted(store)
    placed_job = placed(store)
    cancelled = store.request_cancel(submitted(store).id, at(5), by="alice")
    assert _ids(store.list_jobs(states=[JobState.PENDING])) == [pending.id]
    assert _ids(store.list_jobs(states={JobState.PLACED, JobState.CANCELLED})) == [
        placed_job.id,
        cancelled.id,
    ]
    assert store.list_jobs(states=[]) == []


def test_list_jobs_filters_by_pool(store: Store) -> None:
    """Only jobs whose current attempt is on the pool are listed."""
    on_beta, _, _ = placed(store, "beta"), placed(store, "alpha"), submitted(store)
    assert _ids(store.list_jobs(pool="beta")) == [on_beta.id]


def test_list_jobs_since_is_inclusive_and_until_exclusive(store: Store) -> None:
    """since/until select on submitted_at, as a half-open interval."""
    jobs = [submitted(store, minutes=m) for m in (0, 10, 20, 30)]
    assert _ids(store.list_jobs(since=at(10))) == [j.id for j in jobs[1:]]
    assert _ids(store.list_jobs(until=at(20))) == [j.id for j in jobs[:2]]
    assert _ids(store.list_jobs(since=at(10), until=at(30))) == [jobs[1].id, jobs[2].id]


def test_list_jobs_since_accepts_any_time_zone(store: Store) -> None:
    """A bound in another zone means the same instant."""
    early, late = submitted(store, minutes=0), submitted(store, minutes=60)
    paris = timezone(timedelta(hours=1))
    assert _ids(store.list_jobs(since=at(30).astimezone(paris))) == [late.id]
    assert _ids(store.list_jobs(until=at(30).astimezone(paris))) == [early.id]


def test_list_jobs_orders_by_submission_time(store: Store) -> None:
    """Oldest first by submitted_at (not by id), newest first on request."""
    late = submitted(store, minutes=20)
    early = submitted(store, minutes=0)
    middle = submitted(store, minutes=10)
    assert _ids(store.list_jobs()) == [early.id, middle.id, late.id]
    assert _ids(store.list_jobs(newest_first=True)) == [late.id, middle.id, early.id]


def test_list_jobs_limit_keeps_the_first_of_the_order(store: Store) -> None:
    """limit keeps the oldest, or with newest_first the newest."""
    jobs = [submitted(store, minutes=m) for m in range(5)]
    assert _ids(store.list_jobs(limit=2)) == [jobs[0].id, jobs[1].id]
    assert _ids(store.list_jobs(limit=2, newest_first=True)) == [jobs[4].id, jobs[3].id]
    assert store.list_jobs(limit=0) == []


def test_list_jobs_filters_combine(store: Store) -> None:
    """All filters apply together."""
    submitted(store, "alice", minutes=0)
    wanted = submitted(store, "alice", minutes=10)
    submitted(store, "bob", minutes=10)
    placed(store, "beta", minutes=10)
    found = store.list_jobs(states=[JobState.PENDING], user="alice", since=at(5), limit=10)
    assert _ids(found) == [wanted.id]


def test_list_jobs_refuses_a_negative_limit(store: Store) -> None:
    """A negative limit is a caller's bug."""
    with pytest.raises(ValueError, match="limit"):
        store.list_jobs(limit=-1)


def test_pending_jobs_are_pending_and_not_cancel_requested(store: Store) -> None:
    """pending_jobs lists PENDING jobs in id order, without placed or cancelled ones."""
    first, _, _, last = submitted(store), placed(store), submitted(store), submitted(store)
    store.request_cancel(first.id + 2, at(5), by="alice")
    assert _ids(store.pending_jobs()) == [first.id, last.id]


def test_active_jobs_are_placed_or_running(store: Store) -> None:
    """active_jobs lists PLACED and RUNNING jobs, not pending or ended ones."""
    submitted(store)
    on_pool, run = placed(store), running(store)
    done = running(store, remote_id="9")
    store.update_attempt(done.id, 1, AttemptState.COMPLETED, at(9), exit_code=0)
    assert _ids(store.active_jobs()) == [on_pool.id, run.id]


# -- attempts: the happy path -----------------------------------------------------------------


def test_begin_attempt_places_the_job(store: Store) -> None:
    """begin_attempt makes attempt 1 SUBMITTING and the job PLACED on the pool with the reason."""
    job = submitted(store)
    attempt = store.begin_attempt(job.id, "beta", "placed on beta; alpha: only 2 nodes", at(1))
    assert (attempt.job_id, attempt.number, attempt.pool, attempt.state, attempt.remote_id) == (
        job.id,
        1,
        "beta",
        AttemptState.SUBMITTING,
        None,
    )
    assert attempt.created_at == at(1)
    after = store.get_job(job.id)
    assert after is not None
    assert (after.state, after.pool, after.attempt, after.remote_id, after.updated_at) == (
        JobState.PLACED,
        "beta",
        1,
        None,
        at(1),
    )
    assert after.reason == "placed on beta; alpha: only 2 nodes"
    assert store.attempts(job.id) == [attempt]


def test_begin_attempt_appends_a_placed_event_with_the_reason(store: Store) -> None:
    """The "placed" event carries the placement reason, the pool and the attempt number."""
    job = submitted(store)
    store.begin_attempt(job.id, "beta", "placed on beta; alpha: drained", at(1))
    event = store.events(job.id)[-1]
    assert (event.kind, event.message, event.pool, event.attempt, event.at) == (
        "placed",
        "placed on beta; alpha: drained",
        "beta",
        1,
        at(1),
    )


def test_record_remote_id_moves_the_attempt_to_pending(store: Store) -> None:
    """The attempt gets the remote id and becomes PENDING; the job keeps PLACED with the id."""
    job = placed(store)
    store.record_remote_id(job.id, 1, "123", at(2))
    [attempt] = store.attempts(job.id)
    assert (attempt.state, attempt.remote_id) == (AttemptState.PENDING, "123")
    after = store.get_job(job.id)
    assert after is not None
    assert (after.state, after.remote_id) == (JobState.PLACED, "123")
    event = store.events(job.id)[-1]
    assert (event.kind, event.message, event.pool, event.attempt) == (
        "submitted_remote",
        "beta job 123",
        "beta",
        1,
    )


def test_record_remote_id_twice_appends_one_event(store: Store) -> None:
    """Recording the same remote id again is a no-op."""
    job = placed(store)
    store.record_remote_id(job.id, 1, "123", at(2))
    store.record_remote_id(job.id, 1, "123", at(3))
    assert [e.kind for e in store.events(job.id)].count("submitted_remote") == 1


def test_record_remote_id_of_unknown_attempt_raises(store: Store) -> None:
    """An attempt that does not exist is an UnknownJob."""
    job = placed(store)
    with pytest.raises(UnknownJob):
        store.record_remote_id(job.id, 2, "123", at(2))
    with pytest.raises(UnknownJob):
        store.record_remote_id(424242, 1, "123", at(2))


def test_update_attempt_running_starts_the_job(store: Store) -> None:
    """RUNNING moves attempt and job to RUNNING with the start time and the nodes."""
    job = placed(store)
    store.record_remote_id(job.id, 1, "123", at(2))
    after = store.update_attempt(
        job.id, 1, AttemptState.RUNNING, at(4), nodelist="beta-n[1-2]", started_at=at(3)
    )
    assert (after.state, after.started_at, after.updated_at, after.ended_at) == (
        JobState.RUNNING,
        at(3),
        at(4),
        None,
    )
    [attempt] = store.attempts(job.id)
    assert (attempt.state, attempt.started_at, attempt.nodelist) == (
        AttemptState.RUNNING,
        at(3),
        "beta-n[1-2]",
    )
    event = store.events(job.id)[-1]
    assert (event.kind, event.pool, event.attempt) == ("state", "beta", 1)
    assert event.message == "RUNNING on beta (job 123, nodes beta-n[1-2])"


def test_update_attempt_running_without_a_start_time_uses_now(store: Store) -> None:
    """When the pool gives no start time, the start is `now`."""
    job = placed(store)
    after = store.update_attempt(job.id, 1, AttemptState.RUNNING, at(5))
    assert after.started_at == at(5)
    assert store.attempts(job.id)[0].started_at == at(5)


def test_update_attempt_completed_ends_the_job_with_the_exit_code(store: Store) -> None:
    """COMPLETED ends attempt and job with exit code and end time; "state" event."""
    job = running(store)
    after = store.update_attempt(
        job.id, 1, AttemptState.COMPLETED, at(9), exit_code=0, ended_at=at(8)
    )
    assert (after.state, after.exit_code, after.ended_at, after.started_at) == (
        JobState.COMPLETED,
        0,
        at(8),
        at(3),
    )
    [attempt] = store.attempts(job.id)
    assert (attempt.state, attempt.exit_code, attempt.ended_at) == (
        AttemptState.COMPLETED,
        0,
        at(8),
    )
    assert store.events(job.id)[-1].message == "COMPLETED exit 0"


def test_full_life_produces_the_expected_events(store: Store) -> None:
    """submit -> place -> remote id -> RUNNING -> COMPLETED gives five events in order."""
    job = submitted(store)
    store.begin_attempt(job.id, "beta", "placed on beta", at(1))
    store.record_remote_id(job.id, 1, "123", at(2))
    store.update_attempt(job.id, 1, AttemptState.RUNNING, at(3), nodelist="beta-n1")
    store.update_attempt(job.id, 1, AttemptState.COMPLETED, at(4), exit_code=0)
    events = store.events(job.id)
    assert [(e.kind, e.message) for e in events] == [
        ("submitted", "submitted by alice"),
        ("placed", "placed on beta"),
        ("submitted_remote", "beta job 123"),
        ("state", "RUNNING on beta (job 123, nodes beta-n1)"),
        ("state", "COMPLETED exit 0"),
    ]
    assert [e.at for e in events] == [at(m) for m in range(5)]


def test_update_attempt_failed_message_names_the_exit_code(store: Store) -> None:
    """FAILED with an exit code fails the job; the event says "FAILED exit 3"."""
    job = running(store)
    after = store.update_attempt(job.id, 1, AttemptState.FAILED, at(9), exit_code=3)
    assert (after.state, after.exit_code, after.ended_at) == (JobState.FAILED, 3, at(9))
    assert store.events(job.id)[-1].message == "FAILED exit 3"


def test_update_attempt_cancelled_cancels_the_job(store: Store) -> None:
    """CANCELLED on the pool cancels the job."""
    job = running(store)
    after = store.update_attempt(job.id, 1, AttemptState.CANCELLED, at(9), reason="scancel")
    assert (after.state, after.reason, after.ended_at) == (JobState.CANCELLED, "scancel", at(9))


def test_update_attempt_pending_keeps_the_job_placed(store: Store) -> None:
    """A remote PENDING (e.g. requeued by Slurm) keeps or puts the job back to PLACED."""
    job = running(store)
    after = store.update_attempt(job.id, 1, AttemptState.PENDING, at(9), reason="Priority")
    assert (after.state, after.reason, after.started_at) == (JobState.PLACED, "Priority", at(3))


def test_update_attempt_without_change_writes_no_event(store: Store) -> None:
    """The same state and details again is a no-op: no event, job untouched."""
    job = running(store)
    before = store.events(job.id)
    again = store.update_attempt(job.id, 1, AttemptState.RUNNING, at(30), nodelist="beta-n1")
    assert again == job
    assert store.events(job.id) == before
    assert store.attempts(job.id)[0].started_at == at(3)


def test_update_attempt_detail_change_appends_one_event(store: Store) -> None:
    """A new nodelist in the same state is a change: one event."""
    job = running(store)
    count = len(store.events(job.id))
    store.update_attempt(job.id, 1, AttemptState.RUNNING, at(9), nodelist="beta-n[1-4]")
    assert len(store.events(job.id)) == count + 1
    assert store.attempts(job.id)[0].nodelist == "beta-n[1-4]"


def test_update_attempt_does_not_move_a_terminal_attempt(store: Store) -> None:
    """Once COMPLETED, an attempt ignores later reports; the job is returned unchanged."""
    job = running(store)
    done = store.update_attempt(job.id, 1, AttemptState.COMPLETED, at(9), exit_code=0)
    events = store.events(job.id)
    for state in (AttemptState.RUNNING, AttemptState.FAILED, AttemptState.LOST):
        assert store.update_attempt(job.id, 1, state, at(10), exit_code=1) == done
    assert store.attempts(job.id)[0].state is AttemptState.COMPLETED
    assert store.events(job.id) == events


def test_lost_attempt_fails_the_job_and_keeps_the_reason(store: Store) -> None:
    """LOST maps the job to FAILED with the reason; the attempt stays LOST."""
    job = running(store)
    why = "beta no longer knows job 123"
    after = store.update_attempt(job.id, 1, AttemptState.LOST, at(9), reason=why)
    assert (after.state, after.reason, after.ended_at, after.exit_code) == (
        JobState.FAILED,
        why,
        at(9),
        None,
    )
    assert store.attempts(job.id)[0].state is AttemptState.LOST
    assert store.events(job.id)[-1].message == f"LOST: {why}"


def test_late_report_on_a_previous_attempt_changes_nothing(store: Store) -> None:
    """A report on an aborted earlier attempt moves neither it nor the job on its new attempt."""
    job = placed(store)
    store.abort_attempt(job.id, 1, Outcome.REFUSED, "beta refused", at(2))
    store.begin_attempt(job.id, "alpha", "placed on alpha", at(3))
    store.record_remote_id(job.id, 2, "77", at(4))
    current = store.update_attempt(job.id, 2, AttemptState.RUNNING, at(5))
    assert store.update_attempt(job.id, 1, AttemptState.RUNNING, at(6)) == current
    assert (current.pool, current.attempt, current.remote_id) == ("alpha", 2, "77")
    assert [a.state for a in store.attempts(job.id)] == [AttemptState.FAILED, AttemptState.RUNNING]


def test_update_attempt_of_unknown_attempt_raises(store: Store) -> None:
    """Updating an attempt that does not exist raises UnknownJob."""
    job = submitted(store)
    with pytest.raises(UnknownJob):
        store.update_attempt(job.id, 1, AttemptState.RUNNING, at(1))


def test_active_attempts_are_the_non_terminal_ones(store: Store) -> None:
    """active_attempts lists SUBMITTING, PENDING and RUNNING attempts of all jobs."""
    a, b = placed(store), running(store)
    c = running(store, remote_id="9")
    store.update_attempt(c.id, 1, AttemptState.FAILED, at(9), exit_code=1)
    found = store.active_attempts()
    assert [(x.job_id, x.state) for x in found] == [
        (a.id, AttemptState.SUBMITTING),
        (b.id, AttemptState.RUNNING),
    ]


def test_attempts_of_unknown_job_are_empty(store: Store) -> None:
    """attempts() of a job that does not exist is an empty list."""
    assert store.attempts(424242) == []


# -- abort ------------------------------------------------------------------------------------


def test_abort_attempt_back_to_pending(store: Store) -> None:
    """A refused submission fails the attempt and puts the job back in the queue."""
    job = placed(store)
    after = store.abort_attempt(job.id, 1, Outcome.REFUSED, "beta refused the job: bad gres", at(2))
    assert (after.state, after.pool, after.remote_id, after.attempt, after.ended_at) == (
        JobState.PENDING,
        None,
        None,
        1,
        None,
    )
    assert after.reason == "beta refused the job: bad gres"
    [attempt] = store.attempts(job.id)
    assert (attempt.state, attempt.reason, attempt.ended_at) == (
        AttemptState.FAILED,
        "beta refused the job: bad gres",
        at(2),
    )
    event = store.events(job.id)[-1]
    assert (event.kind, event.pool, event.attempt) == ("aborted", "beta", 1)
    assert event.message.startswith("beta refused the job: bad gres")
    assert _ids(store.pending_jobs()) == [job.id]


def test_abort_attempt_then_next_attempt_is_number_two(store: Store) -> None:
    """After going back to pending, the next attempt is numbered 2."""
    job = placed(store)
    store.abort_attempt(job.id, 1, Outcome.REFUSED, "refused", at(2))
    attempt = store.begin_attempt(job.id, "alpha", "placed on alpha", at(3))
    assert attempt.number == 2
    assert [a.number for a in store.attempts(job.id)] == [1, 2]


def test_abort_attempt_fails_the_job(store: Store) -> None:
    """Refused on its last allowed try, the job FAILS with the reason and an end time."""
    store.policy = lifecycle.Policy(max_submit_tries=1)
    job = placed(store)
    after = store.abort_attempt(job.id, 1, Outcome.REFUSED, "refused 3 times", at(2))
    assert (after.state, after.reason, after.ended_at, after.pool) == (
        JobState.FAILED,
        "refused 3 times",
        at(2),
        None,
    )
    assert store.events(job.id)[-1].kind == "aborted"


def test_abort_attempt_of_a_cancel_requested_job_cancels_it(store: Store) -> None:
    """A job whose cancel was requested does not go back to the queue: it is CANCELLED."""
    job = placed(store)
    store.request_cancel(job.id, at(2), by="alice")
    after = store.abort_attempt(job.id, 1, Outcome.NOT_SUBMITTED, "never reached beta", at(3))
    assert (after.state, after.ended_at) == (JobState.CANCELLED, at(3))
    assert store.pending_jobs() == []


def test_abort_attempt_of_a_terminal_attempt_changes_nothing(store: Store) -> None:
    """Aborting an attempt that already ended is a no-op."""
    job = running(store)
    done = store.update_attempt(job.id, 1, AttemptState.COMPLETED, at(9), exit_code=0)
    events = store.events(job.id)
    assert store.abort_attempt(job.id, 1, Outcome.REFUSED, "late", at(10)) == done
    assert store.events(job.id) == events


# -- cancel -----------------------------------------------------------------------------------


def test_request_cancel_of_a_pending_job_cancels_it_at_once(store: Store) -> None:
    """A PENDING job is CANCELLED at once, with an end time and an event."""
    job = submitted(store)
    after = store.request_cancel(job.id, at(5), by="alice")
    assert (after.state, after.ended_at, after.updated_at) == (JobState.CANCELLED, at(5), at(5))
    event = store.events(job.id)[-1]
    assert (event.kind, event.at) == ("cancelled", at(5))
    assert "alice" in event.message
    assert store.pending_jobs() == []


def test_request_cancel_of_a_placed_job_marks_it(store: Store) -> None:
    """A PLACED job stays PLACED with cancel_requested, for the loop to cancel remotely."""
    job = placed(store)
    after = store.request_cancel(job.id, at(5), by="root")
    assert (after.state, after.cancel_requested, after.ended_at) == (JobState.PLACED, True, None)
    event = store.events(job.id)[-1]
    assert (event.kind, event.pool, event.attempt) == ("cancel_requested", "beta", 1)
    assert "root" in event.message


def test_request_cancel_of_a_running_job_marks_it_once(store: Store) -> None:
    """A second cancel of a RUNNING job appends no second event."""
    job = running(store)
    store.request_cancel(job.id, at(5), by="alice")
    again = store.request_cancel(job.id, at(6), by="alice")
    assert (again.state, again.cancel_requested) == (JobState.RUNNING, True)
    assert [e.kind for e in store.events(job.id)].count("cancel_requested") == 1


def test_request_cancel_of_a_terminal_job_changes_nothing(store: Store) -> None:
    """A finished job is returned unchanged, with no event."""
    job = running(store)
    done = store.update_attempt(job.id, 1, AttemptState.COMPLETED, at(9), exit_code=0)
    events = store.events(job.id)
    assert store.request_cancel(job.id, at(10), by="alice") == done
    assert store.events(job.id) == events


def test_request_cancel_of_unknown_job_raises(store: Store) -> None:
    """Cancelling a job that does not exist raises UnknownJob."""
    with pytest.raises(UnknownJob):
        store.request_cancel(424242, at(0), by="alice")


def test_begin_attempt_on_a_cancelled_job_raises_stale(store: Store) -> None:
    """A cancel that won the race is respected: begin_attempt raises StaleJob."""
    job = submitted(store)
    store.request_cancel(job.id, at(1), by="alice")
    with pytest.raises(StaleJob):
        store.begin_attempt(job.id, "beta", "placed on beta", at(2))
    assert store.attempts(job.id) == []


def test_begin_attempt_on_a_cancel_requested_job_raises_stale(store: Store) -> None:
    """A job with cancel_requested cannot be placed again."""
    job = placed(store)
    store.request_cancel(job.id, at(2), by="alice")
    with pytest.raises(StaleJob):
        store.begin_attempt(job.id, "alpha", "placed on alpha", at(3))
    assert len(store.attempts(job.id)) == 1


def test_begin_attempt_on_a_placed_job_raises_stale(store: Store) -> None:
    """A job already placed cannot be placed twice."""
    job = placed(store)
    with pytest.raises(StaleJob):
        store.begin_attempt(job.id, "alpha", "placed on alpha", at(3))


def test_begin_attempt_on_unknown_job_raises(store: Store) -> None:
    """begin_attempt on a job that does not exist raises UnknownJob."""
    with pytest.raises(UnknownJob):
        store.begin_attempt(424242, "beta", "placed on beta", at(0))


# -- reasons ----------------------------------------------------------------------------------


def test_set_reason_changes_a_pending_jobs_reason_without_event(store: Store) -> None:
    """set_reason updates a waiting job's reason and appends no event."""
    job = submitted(store)
    store.set_reason(job.id, "waiting: no pool can run it now; beta: only 2 GPUs free")
    after = store.get_job(job.id)
    assert after is not None
    assert after.reason == "waiting: no pool can run it now; beta: only 2 GPUs free"
    assert after.updated_at == job.updated_at
    assert len(store.events(job.id)) == 1


def test_set_reason_ignores_jobs_that_are_not_pending(store: Store) -> None:
    """A stale waiting reason never overwrites a placed job's reason."""
    job = placed(store)
    store.set_reason(job.id, "waiting")
    after = store.get_job(job.id)
    assert after is not None
    assert after.reason == "placed on beta"


def test_set_reasons_updates_many_jobs_at_once(store: Store) -> None:
    """set_reasons writes every pending job's reason; unknown ids are ignored."""
    jobs = [submitted(store) for _ in range(3)]
    store.set_reasons({jobs[0].id: "r0", jobs[2].id: "r2", 424242: "ghost"})
    assert [store.get_job(j.id).reason for j in jobs] == ["r0", "", "r2"]  # type: ignore[union-attr]


def test_set_reasons_handles_more_ids_than_one_chunk(store: Store) -> None:
    """Over a thousand reasons in one call are all written."""
    jobs = [submitted(store) for _ in range(3)]
    reasons = {424_242 + i: "ghost" for i in range(1200)} | {j.id: f"r{j.id}" for j in jobs}
    store.set_reasons(reasons)
    assert [store.get_job(j.id).reason for j in jobs] == [  # type: ignore[union-attr]
        f"r{j.id}" for j in jobs
    ]


# -- pools ------------------------------------------------------------------------------------


def test_ensure_pools_inserts_missing_pools_up_and_reachable(store: Store) -> None:
    """New pools are not drained, reachable, with no capacity yet."""
    store.ensure_pools(["alpha", "beta", "alpha"], at(0))
    assert store.pools() == {
        name: PoolRecord(name, False, "", True, "", at(0), None) for name in ("alpha", "beta")
    }


def test_ensure_pools_keeps_existing_rows(store: Store) -> None:
    """A pool already known keeps its drain and capacity."""
    store.ensure_pools(["alpha"], at(0))
    drained = store.set_pool_drained("alpha", True, "maintenance", at(1))
    store.ensure_pools(["alpha", "gamma"], at(2))
    pools = store.pools()
    assert pools["alpha"] == drained
    assert set(pools) == {"alpha", "gamma"}


def test_set_pool_drained_round_trip(store: Store) -> None:
    """Drain then resume: the record says so, with the reason while drained."""
    store.ensure_pools(["beta"], at(0))
    record = store.set_pool_drained("beta", True, "maintenance", at(1))
    assert (record.drained, record.drain_reason, record.updated_at) == (True, "maintenance", at(1))
    assert store.pools()["beta"] == record
    resumed = store.set_pool_drained("beta", False, "", at(2))
    assert (resumed.drained, resumed.drain_reason) == (False, "")


def test_set_pool_drained_of_unknown_pool_raises(store: Store) -> None:
    """Draining a pool with no row raises UnknownPool."""
    with pytest.raises(UnknownPool):
        store.set_pool_drained("nope", True, "x", at(0))


def test_set_pool_reachable_round_trip(store: Store) -> None:
    """Unreachable with the error, then reachable again with no reason."""
    store.ensure_pools(["beta"], at(0))
    down = store.set_pool_reachable("beta", False, "connection refused", at(1))
    assert (down.reachable, down.unreachable_reason, down.updated_at) == (
        False,
        "connection refused",
        at(1),
    )
    up = store.set_pool_reachable("beta", True, "", at(2))
    assert (up.reachable, up.unreachable_reason, up.updated_at) == (True, "", at(2))
    assert store.pools()["beta"] == up


def test_set_pool_reachable_writes_only_on_change(store: Store) -> None:
    """The same reachability again does not touch updated_at."""
    store.ensure_pools(["beta"], at(0))
    store.set_pool_reachable("beta", False, "timeout", at(1))
    again = store.set_pool_reachable("beta", False, "timeout", at(2))
    assert again.updated_at == at(1)


def test_set_pool_reachable_of_unknown_pool_raises(store: Store) -> None:
    """An unknown pool raises UnknownPool."""
    with pytest.raises(UnknownPool):
        store.set_pool_reachable("nope", False, "x", at(0))


def test_save_capacity_round_trip(store: Store) -> None:
    """The nodes come back equal, in order, as NodeSnapshots."""
    store.ensure_pools(["beta"], at(0))
    nodes = (node("beta-n1"), node("beta-n2", free_gpus=0, schedulable=False))
    store.save_capacity("beta", nodes, at(1))
    record = store.pools()["beta"]
    assert (record.capacity, record.updated_at) == (nodes, at(1))


def test_save_capacity_of_no_nodes_is_an_empty_tuple(store: Store) -> None:
    """An empty pool is () (reached, no nodes), not None (never reached)."""
    store.ensure_pools(["beta"], at(0))
    store.save_capacity("beta", [], at(1))
    assert store.pools()["beta"].capacity == ()


def test_save_capacity_of_unknown_pool_raises(store: Store) -> None:
    """Saving the capacity of a pool with no row raises UnknownPool."""
    with pytest.raises(UnknownPool):
        store.save_capacity("nope", [node()], at(0))


# -- events, times ----------------------------------------------------------------------------


def test_events_are_ordered_with_increasing_ids(store: Store) -> None:
    """Events come oldest first with strictly increasing ids, across interleaved jobs."""
    a, b = running(store), running(store, remote_id="9")
    store.update_attempt(a.id, 1, AttemptState.COMPLETED, at(9), exit_code=0)
    for job in (a, b):
        ids = [e.id for e in store.events(job.id)]
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)
    assert min(e.id for e in store.events(b.id)) > min(e.id for e in store.events(a.id))


def test_events_after_id_returns_only_newer_events(store: Store) -> None:
    """events(job, after_id) resumes after the last event seen."""
    job = running(store)
    events = store.events(job.id)
    assert store.events(job.id, events[1].id) == events[2:]
    assert store.events(job.id, events[-1].id) == []


def test_store_has_no_way_to_change_events(store: Store) -> None:
    """Events are append-only: no public method updates or deletes them."""
    names = [n for n in dir(store) if not n.startswith("_")]
    assert not [n for n in names if "event" in n and n != "events"]
    assert not [n for n in names if n.startswith(("delete", "remove", "purge"))]


def test_datetimes_come_back_aware_utc(store: Store) -> None:
    """Times given in any zone come back as the same instant in UTC."""
    tokyo = timezone(timedelta(hours=9))
    when = datetime(2026, 3, 1, 18, 30, 15, 123456, tzinfo=tokyo)
    job = store.add_job("alice", request(), when)
    store.begin_attempt(job.id, "beta", "placed", when + timedelta(seconds=1))
    store.update_attempt(
        job.id,
        1,
        AttemptState.RUNNING,
        when + timedelta(seconds=2),
        started_at=when + timedelta(seconds=2),
    )
    store.ensure_pools(["beta"], when)
    found = store.get_job(job.id)
    assert found is not None
    values = [
        found.submitted_at,
        found.updated_at,
        found.started_at,
        *(e.at for e in store.events(job.id)),
        store.attempts(job.id)[0].created_at,
        store.pools()["beta"].updated_at,
    ]
    for value in values:
        assert value is not None
        assert value.tzinfo is UTC
    assert found.submitted_at == when
    assert found.submitted_at.hour == 9  # 18:30 in Tokyo
    assert found.submitted_at.microsecond == 123456


def test_naive_datetimes_are_refused(store: Store) -> None:
    """A naive datetime is a ValueError, before anything is written."""
    with pytest.raises(ValueError, match="naive"):
        store.add_job("alice", request(), datetime(2026, 1, 1, 12, 0))
    with pytest.raises(ValueError, match="naive"):
        store.list_jobs(since=datetime(2026, 1, 1, 12, 0))
    assert store.list_jobs() == []


# -- threads ----------------------------------------------------------------------------------


def test_two_threads_adding_jobs_lose_nothing(store: Store) -> None:
    """2 threads x 50 add_job: 100 distinct jobs, each with its submitted event."""
    start = threading.Barrier(2)

    def add(user: str) -> list[int]:
        start.wait()
        return [store.add_job(user, request(), at(i)).id for i in range(50)]

    with ThreadPoolExecutor(2) as pool:
        ids = [job_id for batch in pool.map(add, ["alice", "bob"]) for job_id in batch]
    assert len(set(ids)) == 100
    assert sorted(_ids(store.list_jobs())) == sorted(ids)
    assert all(len(store.events(job_id)) == 1 for job_id in ids)


def test_racing_begin_attempts_place_a_job_once(store: Store) -> None:
    """Of 4 threads placing the same job, exactly one wins; the others get StaleJob."""
    job = submitted(store)
    start = threading.Barrier(4)

    def place(pool: str) -> str:
        start.wait()
        try:
            store.begin_attempt(job.id, pool, f"placed on {pool}", at(1))
        except StaleJob:
            return "stale"
        return "placed"

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(place, ["a", "b", "c", "d"]))
    assert sorted(results) == ["placed", "stale", "stale", "stale"]
    assert len(store.attempts(job.id)) == 1
    assert [e.kind for e in store.events(job.id)].count("placed") == 1


def test_cancel_racing_placement_is_never_lost(store: Store) -> None:
    """A cancel and a placement racing: the job is either CANCELLED or PLACED+cancel_requested."""
    jobs = [submitted(store) for _ in range(20)]
    start = threading.Barrier(2)

    def place() -> None:
        start.wait()
        for job in jobs:
            with contextlib.suppress(StaleJob):
                store.begin_attempt(job.id, "beta", "placed", at(1))

    def cancel() -> None:
        start.wait()
        for job in reversed(jobs):
            store.request_cancel(job.id, at(1), by="alice")

    workers: list[Callable[[], None]] = [place, cancel]
    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(w) for w in workers]:
            future.result()
    for job in jobs:
        after = store.get_job(job.id)
        assert after is not None
        assert after.cancel_requested
        assert (after.state, len(store.attempts(job.id))) in {
            (JobState.CANCELLED, 0),
            (JobState.PLACED, 1),
        }


def test_a_store_works_from_a_thread_other_than_its_creator(store_url: str) -> None:
    """A Store made in one thread serves calls from another (as asyncio.to_thread does)."""
    with Store(store_url) as s:
        job_id = s.add_job("alice", request(), at(0)).id
        with ThreadPoolExecutor(1) as pool:
            found = pool.submit(s.get_job, job_id).result()
    assert found is not None and found.id == job_id


def test_job_request_type_is_the_domain_type(store: Store) -> None:
    """The request inside a returned Job is a domain JobRequest with a plain dict environment."""
    job = submitted(store, environment={"A": "1"})
    found = store.get_job(job.id)
    assert found is not None
    assert isinstance(found.request, JobRequest)
    assert found.request.environment == {"A": "1"}
    assert found.submitted_at.tzinfo is UTC
