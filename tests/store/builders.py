"""Jobs put into a store at a given point of their life (the values: tests/fixtures)."""

from __future__ import annotations

from typing import Any

from scheduler.domain import AttemptState, Job
from scheduler.store import Store
from tests.fixtures.jobs import at, request

__all__ = ["placed", "running", "submitted"]


def submitted(store: Store, user: str = "alice", minutes: float = 0, **fields: Any) -> Job:
    """A new PENDING job submitted at T0 + minutes; `fields` are its request's."""
    return store.add_job(user, request(**fields), at(minutes))


def placed(store: Store, pool: str = "beta", minutes: float = 0, user: str = "alice") -> Job:
    """A job PLACED on `pool` with attempt 1 (SUBMITTING, no remote id yet)."""
    job = submitted(store, user, minutes)
    store.begin_attempt(job.id, pool, f"placed on {pool}", at(minutes + 1))
    found = store.get_job(job.id)
    assert found is not None
    return found


def running(store: Store, pool: str = "beta", remote_id: str = "123", minutes: float = 0) -> Job:
    """A job RUNNING on `pool` as remote job `remote_id`."""
    job = placed(store, pool, minutes)
    store.record_remote_id(job.id, 1, remote_id, at(minutes + 2))
    return store.update_attempt(
        job.id, 1, AttemptState.RUNNING, at(minutes + 3), nodelist="beta-n1"
    )
