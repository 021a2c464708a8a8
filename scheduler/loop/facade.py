"""The narrow interface the API serves from: what it may read of the loop, and how to wake it.

The API never changes the loop's memory and never touches an adapter: it writes to the store
(drain, cancel, submit) and wakes the loop, which reads the store on its next pass. So a
second sfedd, with no loop of its own, could serve the same API from the same store.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from scheduler.domain import Job, JobRequest, NodeSnapshot

__all__ = ["LoopFacade", "NotDelivered", "OutputUnknown", "PoolStatus"]


class NotDelivered(Exception):
    """A signal did not reach the job; str() says why (not running, the pool refused)."""


class OutputUnknown(Exception):
    """sfedd cannot tell where the job writes that stream (a pattern it cannot expand)."""


@dataclass(frozen=True, slots=True)
class PoolStatus:
    """One pool as the loop last saw it; the admin's drain is the store's (PoolRecord)."""

    name: str
    kind: str
    transport: str
    partition: str | None
    price_per_gpu_hour: float
    weight: int
    nodes: tuple[NodeSnapshot, ...] | None  # None = never reached
    reachable: bool
    error: str  # why it is unreachable
    updated_at: datetime | None


class LoopFacade(Protocol):
    """What the API asks of the loop. Every method returns at once unless it says otherwise."""

    def pool_names(self) -> tuple[str, ...]:
        """The configured pools, in configuration order."""
        ...

    def pool_statuses(self) -> tuple[PoolStatus, ...]:
        """Every configured pool's last snapshot and reachability, in configuration order."""
        ...

    def never_fits(self, request: JobRequest) -> str | None:
        """Why no configured pool could ever run `request`, or None when one could."""
        ...

    def wake(self) -> None:
        """Ask for a pass now (after the store changed: a submit, a cancel, a drain)."""
        ...

    async def wait_changed(self, timeout: float) -> None:
        """Return when the loop next records a change, or after `timeout` seconds."""
        ...

    async def read_output(self, job: Job, *, stderr: bool, offset: int, limit: int) -> bytes:
        """Up to `limit` bytes of the current attempt's stdout (or stderr) from `offset`.

        b"" when the job has no remote job yet, its pool is not configured, it has no stderr
        of its own, or its pool cannot be read now (logged). Raises OutputUnknown when sfedd
        cannot tell where the job's stdout is, and pools.base.OutputRestarted when the pool
        started the file anew (read again from 0). One or two pool round trips, bounded by
        the loop's pool timeout.
        """
        ...

    async def signal(self, job: Job, signal: str, *, batch_only: bool) -> None:
        """Send `signal` to the job's current remote job (Pool.signal). One pool round trip,
        bounded by the loop's pool timeout. Raises NotDelivered saying why it did not."""
        ...
