"""Tests of scheduler.loop.loop: the loop's repair paths, on a real SQLite store.

The happy paths run against real Slurm in tests/e2e. Here an in-memory pool (the same
`Pool` protocol, tests/fixtures/memory_pool.py) produces what a real cluster cannot on
demand: refusals, silence, vanished jobs, a crash between sbatch and the commit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scheduler.config import Config, parse_config
from scheduler.domain import AttemptState, JobState, RemoteJob, RemoteTag
from scheduler.lifecycle import Policy
from scheduler.loop import Loop
from scheduler.store import Store
from tests.fixtures.jobs import request
from tests.fixtures.memory_pool import MemoryPool

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def config_for(*names: str) -> Config:
    """A config with one Slurm pool per name (alpha cheapest)."""
    return parse_config(
        {
            "federation": {"name": "t"},
            "pools": [
                {"name": n, "partition": "gpu", "price_per_gpu_hour": float(i)}
                for i, n in enumerate(names)
            ],
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A migrated SQLite store in a temp dir."""
    s = Store(f"sqlite:///{tmp_path / 'sfed.db'}")
    s.migrate()
    yield s
    s.close()


def make_loop(store: Store, *pools: MemoryPool) -> Loop:
    """A started loop over the given pools."""
    loop = Loop(
        config_for(*(p.name for p in pools)), store, {p.name: p for p in pools}, clock=lambda: NOW
    )
    asyncio.run(loop.start())
    return loop


def submit(store: Store, nodes: int = 2, gpus: int = 4) -> int:
    """Queue a job directly in the store."""
    return store.add_job("alice", request(script=b"#!/bin/sh\n", nodes=nodes, gpus=gpus), NOW).id


def run_pass(loop: Loop) -> None:
    asyncio.run(loop.run_pass())


def test_unreachable_pool_gets_no_jobs(store: Store) -> None:
    """A silent pool is marked unreachable and the job goes to the pool that answers."""
    alpha, beta = MemoryPool("alpha", silent=True), MemoryPool("beta")
    loop = make_loop(store, alpha, beta)
    job_id = submit(store)
    run_pass(loop)
    assert store.pools()["alpha"].reachable is False
    job = store.get_job(job_id)
    assert job is not None and (job.state, job.pool) == (JobState.PLACED, "beta")
    assert not alpha.jobs


def test_refused_submission_goes_back_to_the_queue(store: Store) -> None:
    """A pool's refusal aborts the attempt and queues the job again, with the reason."""
    alpha = MemoryPool("alpha", refuse="invalid partition")
    loop = make_loop(store, alpha)
    job_id = submit(store)
    run_pass(loop)
    job = store.get_job(job_id)
    assert job is not None and job.state is JobState.PENDING
    assert "invalid partition" in store.attempts(job_id)[0].reason


def test_job_fails_after_repeated_refusals(store: Store) -> None:
    """After the policy's max_submit_tries refusals the job fails instead of looping forever."""
    loop = make_loop(store, MemoryPool("alpha", refuse="invalid partition"))
    job_id = submit(store)
    for _ in range(Policy().max_submit_tries):
        run_pass(loop)
    job = store.get_job(job_id)
    assert job is not None and job.state is JobState.FAILED
    assert len(store.attempts(job_id)) == Policy().max_submit_tries


def test_remote_end_reaches_the_job(store: Store) -> None:
    """A remote FAILED with exit 3 ends the federation job FAILED with exit 3."""
    alpha = MemoryPool("alpha")
    loop = make_loop(store, alpha)
    job_id = submit(store)
    run_pass(loop)
    [remote_id] = alpha.jobs
    alpha.finish(remote_id, AttemptState.FAILED, 3)
    run_pass(loop)
    job = store.get_job(job_id)
    assert job is not None and (job.state, job.exit_code) == (JobState.FAILED, 3)


def test_vanished_remote_job_is_lost(store: Store) -> None:
    """A remote job the pool forgot without an end is LOST and the job FAILED."""
    alpha = MemoryPool("alpha")
    loop = make_loop(store, alpha)
    job_id = submit(store)
    run_pass(loop)
    alpha.jobs.clear()
    run_pass(loop)
    assert store.attempts(job_id)[0].state is AttemptState.LOST
    job = store.get_job(job_id)
    assert job is not None and job.state is JobState.FAILED


def test_unrecorded_submission_is_found_by_tag(store: Store) -> None:
    """An attempt left SUBMITTING whose job reached the pool is recovered, not resubmitted."""
    alpha = MemoryPool("alpha")
    loop = make_loop(store, alpha)
    job_id = submit(store)
    attempt = store.begin_attempt(job_id, "alpha", "placed", NOW)
    alpha.jobs["77"] = RemoteJob(
        "77", AttemptState.RUNNING, tag=RemoteTag("t", job_id, attempt.number)
    )
    run_pass(loop)
    job = store.get_job(job_id)
    assert job is not None and (job.state, job.remote_id) == (JobState.RUNNING, "77")
    assert list(alpha.jobs) == ["77"]


def test_unrecorded_submission_that_never_arrived_is_placed_again(store: Store) -> None:
    """An attempt left SUBMITTING with no remote job is aborted and the job placed anew."""
    alpha = MemoryPool("alpha")
    loop = make_loop(store, alpha)
    job_id = submit(store)
    store.begin_attempt(job_id, "alpha", "placed", NOW)
    run_pass(loop)
    attempts = store.attempts(job_id)
    assert [a.state for a in attempts] == [AttemptState.FAILED, AttemptState.PENDING]
    assert len(alpha.jobs) == 1


def test_cancel_reaches_the_pool(store: Store) -> None:
    """A cancel request on a placed job cancels the remote job and ends the job CANCELLED."""
    alpha = MemoryPool("alpha")
    loop = make_loop(store, alpha)
    job_id = submit(store)
    run_pass(loop)
    store.request_cancel(job_id, NOW, by="alice")
    run_pass(loop)
    run_pass(loop)
    assert alpha.cancelled == list(alpha.jobs)
    job = store.get_job(job_id)
    assert job is not None and job.state is JobState.CANCELLED


def test_two_jobs_in_one_pass_do_not_share_nodes(store: Store) -> None:
    """Two 2-node jobs on a 2-node pool: one is placed, the other waits with the reason."""
    loop = make_loop(store, MemoryPool("alpha"))
    first, second = submit(store), submit(store)
    run_pass(loop)
    states = {j: store.get_job(j) for j in (first, second)}
    assert [s.state if s else None for s in states.values()] == [JobState.PLACED, JobState.PENDING]
    waiting = states[second]
    assert waiting is not None and "alpha:" in waiting.reason


def test_capabilities_file_is_published(store: Store, tmp_path: Path) -> None:
    """With a capabilities_file configured, a pass writes what each pool could ever run."""
    path = tmp_path / "capabilities"
    config = config_for("alpha").model_copy(
        update={
            "federation": config_for("alpha").federation.model_copy(
                update={"capabilities_file": str(path)}
            )
        }
    )
    pool = MemoryPool("alpha", nodes=2, gpus=4)
    loop = Loop(config, store, {"alpha": pool}, clock=lambda: NOW)
    asyncio.run(loop.start())
    assert path.read_text().splitlines()[1] == (
        "pool=alpha nodes=2 gpus_per_node=4 cpus_per_node=16 mem_mb_per_node=64000 state=UP"
    )


def test_capabilities_wait_for_every_pool(store: Store, tmp_path: Path) -> None:
    """While a pool was never reached no file is written (the shim then accepts every job)."""
    path = tmp_path / "capabilities"
    config = config_for("alpha", "beta")
    config = config.model_copy(
        update={"federation": config.federation.model_copy(update={"capabilities_file": str(path)})}
    )
    loop = Loop(
        config,
        store,
        {"alpha": MemoryPool("alpha"), "beta": MemoryPool("beta", silent=True)},
        clock=lambda: NOW,
    )
    asyncio.run(loop.start())
    assert not path.exists()
