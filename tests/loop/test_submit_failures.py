"""Tests of the loop with submissions that fail or race: one job's trouble is not the pool's,
and an admin's drain holds from the moment it is stored.

A submission that gets no answer leaves the pool up (its snapshot decides), and a job whose
submissions keep failing, refused or never arriving, fails after the policy's tries with
the pool's words instead of being placed again forever.
"""

from __future__ import annotations

import asyncio

import pytest

from scheduler.domain import (
    AttemptState,
    JobState,
    NodeSnapshot,
    Outcome,
    PoolState,
    RemoteSubmission,
)
from scheduler.lifecycle import Policy
from scheduler.loop import NotDelivered
from scheduler.pools.base import PoolUnreachable
from scheduler.store import Store
from tests.fixtures.jobs import request
from tests.fixtures.memory_pool import MemoryPool
from tests.loop.test_loop import NOW, make_loop, run_pass, store, submit

__all__ = ["store"]


class Unanswered(MemoryPool):
    """A pool that answers everything but never answers a submission (and never gets it)."""

    async def submit(self, submission: RemoteSubmission) -> str:
        raise PoolUnreachable(f"{self.name}: sbatch did not finish within 30 s")


def test_unanswered_submission_leaves_the_pool_up(store: Store) -> None:
    """A submission without an answer is recorded on the attempt; the pool stays UP."""
    loop = make_loop(store, Unanswered("alpha"))
    job_id = submit(store)
    run_pass(loop)
    [attempt] = store.attempts(job_id)
    assert attempt.state is AttemptState.SUBMITTING
    assert attempt.reason == "no answer to sbatch: alpha: sbatch did not finish within 30 s"
    assert loop.pools["alpha"].state is PoolState.UP


def test_submissions_that_never_arrive_end_after_the_tries(store: Store) -> None:
    """Never-arriving submissions go back to the queue until the tries are spent, then FAIL."""
    loop = make_loop(store, Unanswered("alpha"))
    job_id = submit(store)
    for _ in range(2 * Policy().max_submit_tries + 2):
        run_pass(loop)
    job = store.get_job(job_id)
    assert job is not None and job.state is JobState.FAILED
    assert job.reason == (
        "the submission never reached alpha "
        "(no answer to sbatch: alpha: sbatch did not finish within 30 s)"
    )
    attempts = store.attempts(job_id)
    assert len(attempts) == Policy().max_submit_tries
    assert {a.outcome for a in attempts} == {Outcome.NOT_SUBMITTED}


@pytest.mark.parametrize("tries", [1, 5])
def test_the_policy_bounds_the_tries(store: Store, tries: int) -> None:
    """The store's lifecycle policy says how many submissions in a row may fail."""
    store.policy = Policy(max_submit_tries=tries)
    loop = make_loop(store, MemoryPool("alpha", refuse="sbatch: error: invalid account"))
    job_id = submit(store)
    for _ in range(tries + 3):
        run_pass(loop)
    job = store.get_job(job_id)
    assert job is not None and job.state is JobState.FAILED
    assert len(store.attempts(job_id)) == tries


class DrainedMidPass(MemoryPool):
    """A pool whose next snapshot is the moment an admin drains it and a user then submits:
    the pass has read the pools already, and will read the pending jobs later."""

    store: Store | None = None

    async def snapshot(self) -> tuple[NodeSnapshot, ...]:
        nodes = await super().snapshot()
        if self.store is not None:
            self.store.set_pool_drained(self.name, True, "maintenance", NOW)
            submit(self.store)
            self.store = None
        return nodes


def test_drain_before_a_submission_holds_within_a_pass(store: Store) -> None:
    """A job submitted after a drain is not placed on the drained pool by a pass that was
    already running when both happened."""
    pool = DrainedMidPass("alpha")
    loop = make_loop(store, pool)
    pool.store = store
    run_pass(loop)
    [job] = store.list_jobs()
    assert job.state is JobState.PENDING and "alpha: drained" in job.reason


def test_variables_a_pool_leaves_out_are_told_to_the_owner(store: Store) -> None:
    """The job's history says which variables its pool left out, and why."""
    pool = MemoryPool("alpha", left_out={"LD_PRELOAD": "it would steer the loader"})
    loop = make_loop(store, pool)
    job_id = store.add_job(
        "alice", request(script=b"#!/bin/sh\n", environment={"LD_PRELOAD": "/x.so", "A": "1"}), NOW
    ).id
    run_pass(loop)
    [note] = [e for e in store.events(job_id) if e.kind == "environment"]
    assert note.message == (
        "left out of the job's environment on alpha: LD_PRELOAD (it would steer the loader)"
    )
    assert (note.pool, note.attempt) == ("alpha", 1)


def test_nothing_left_out_writes_no_note(store: Store) -> None:
    """A job whose whole environment reaches the pool gets no environment event."""
    loop = make_loop(store, MemoryPool("alpha", left_out={"LD_PRELOAD": "why"}))
    job_id = submit(store)
    run_pass(loop)
    assert [e for e in store.events(job_id) if e.kind == "environment"] == []


def test_signal_reaches_the_running_job(store: Store) -> None:
    """A signal for a running job goes to its remote job on its pool."""
    pool = MemoryPool("alpha")
    loop = make_loop(store, pool)
    job_id = submit(store)
    run_pass(loop)
    job = store.get_job(job_id)
    assert job is not None and job.remote_id is not None
    asyncio.run(loop.signal(job, "USR1", batch_only=True))
    assert pool.signals == [(job.remote_id, "USR1", True)]


def test_signal_to_a_job_not_on_a_pool_is_not_delivered(store: Store) -> None:
    """A pending job has nothing to signal: NotDelivered says so."""
    loop = make_loop(store, MemoryPool("alpha", silent=True))
    job = store.get_job(submit(store))
    assert job is not None
    with pytest.raises(NotDelivered, match=f"job {job.id} is not running on a pool"):
        asyncio.run(loop.signal(job, "USR1", batch_only=False))
