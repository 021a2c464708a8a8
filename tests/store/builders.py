"""Builders for store tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from scheduler.domain import AttemptState, Job, JobRequest, NodeSnapshot
from scheduler.store import Store

T0 = datetime(2026, 1, 31, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    """T0 plus some minutes."""
    return T0 + timedelta(minutes=minutes)


def request(script: bytes = b"#!/bin/sh\nhostname\n", **fields: Any) -> JobRequest:
    """A JobRequest with defaults; any field may be given."""
    return JobRequest(script=script, **fields)


def node(name: str = "beta-n1", *, gpus: int = 8, free: int = 8, **fields: Any) -> NodeSnapshot:
    """A node with 8 GPUs, 64 CPUs and 512 GB by default."""
    values: dict[str, Any] = {
        "gpus_total": gpus,
        "gpus_free": free,
        "cpus_total": 64,
        "cpus_free": 64,
        "mem_total_mb": 512_000,
        "mem_free_mb": 512_000,
    }
    values.update(fields)
    return NodeSnapshot(name=name, **values)


def submitted(store: Store, user: str = "alice", minutes: float = 0, **fields: Any) -> Job:
    """A new PENDING job submitted at T0 + minutes."""
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
