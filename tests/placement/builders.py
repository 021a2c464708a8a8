"""Fixture builders for placement tests: small, readable pools, nodes, requests and jobs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from scheduler.domain import Job, JobRequest, JobState, NodeSnapshot, PoolSnapshot, PoolState

__all__ = ["T0", "job", "node", "pool", "request"]

T0 = datetime(2025, 1, 1, tzinfo=UTC)
SCRIPT = b"#!/bin/sh\nsrun hostname\n"


def node(
    name: str,
    *,
    gpus: int = 8,
    free_gpus: int | None = None,
    cpus: int = 64,
    free_cpus: int | None = None,
    mem: int = 512_000,
    free_mem: int | None = None,
    schedulable: bool = True,
) -> NodeSnapshot:
    """A node, idle unless free_* say otherwise."""
    return NodeSnapshot(
        name=name,
        gpus_total=gpus,
        gpus_free=gpus if free_gpus is None else free_gpus,
        cpus_total=cpus,
        cpus_free=cpus if free_cpus is None else free_cpus,
        mem_total_mb=mem,
        mem_free_mb=mem if free_mem is None else free_mem,
        schedulable=schedulable,
    )


def _each(value: int | Sequence[int] | None, count: int) -> list[int | None]:
    if value is None or isinstance(value, int):
        return [value] * count
    assert len(value) == count, f"{len(value)} values for {count} nodes"
    return list(value)


def pool(
    name: str,
    *,
    nodes: int = 4,
    gpus: int = 8,
    free_gpus: int | Sequence[int] | None = None,
    cpus: int = 64,
    free_cpus: int | Sequence[int] | None = None,
    mem: int = 512_000,
    free_mem: int | Sequence[int] | None = None,
    down: int = 0,
    state: PoolState = PoolState.UP,
    weight: int = 1,
    price: float = 0.0,
    partition: str | None = None,
    inflight: Sequence[JobRequest] = (),
    extra: Sequence[NodeSnapshot] = (),
) -> PoolSnapshot:
    """A pool of `nodes` identical nodes named <pool>-n<i>; free_* as one value for all
    nodes or one per node; the last `down` nodes unschedulable; `extra` nodes appended."""
    built = tuple(
        node(
            f"{name}-n{i}",
            gpus=gpus,
            free_gpus=fg,
            cpus=cpus,
            free_cpus=fc,
            mem=mem,
            free_mem=fm,
            schedulable=i < nodes - down,
        )
        for i, (fg, fc, fm) in enumerate(
            zip(
                _each(free_gpus, nodes),
                _each(free_cpus, nodes),
                _each(free_mem, nodes),
                strict=True,
            )
        )
    )
    return PoolSnapshot(
        name=name,
        state=state,
        nodes=built + tuple(extra),
        weight=weight,
        price_per_gpu_hour=price,
        partition=partition,
        inflight=tuple(inflight),
    )


def request(
    *,
    nodes: int = 1,
    gpus: int = 0,
    cpus: int = 1,
    ntasks: int | None = None,
    mem: int | None = None,
    partition: str | None = None,
    priority: int = 0,
) -> JobRequest:
    """A request; `cpus` is CPUs per task (one task per node unless `ntasks`)."""
    return JobRequest(
        script=SCRIPT,
        nodes=nodes,
        ntasks=ntasks,
        gpus_per_node=gpus,
        cpus_per_task=cpus,
        mem_per_node_mb=mem,
        partition=partition,
        priority=priority,
    )


def job(
    id: int,
    *,
    nodes: int = 1,
    gpus: int = 0,
    cpus: int = 1,
    ntasks: int | None = None,
    mem: int | None = None,
    partition: str | None = None,
    priority: int = 0,
    submitted: int | None = None,
    cancel: bool = False,
) -> Job:
    """A pending job; `submitted` in seconds after T0 (default: its id)."""
    at = T0 + timedelta(seconds=id if submitted is None else submitted)
    return Job(
        id=id,
        user="alice",
        request=request(
            nodes=nodes,
            gpus=gpus,
            cpus=cpus,
            ntasks=ntasks,
            mem=mem,
            partition=partition,
            priority=priority,
        ),
        state=JobState.PENDING,
        submitted_at=at,
        updated_at=at,
        cancel_requested=cancel,
    )
