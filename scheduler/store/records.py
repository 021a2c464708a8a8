"""Values the store returns that are not shared domain types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from scheduler.domain import NodeSnapshot

__all__ = ["PoolRecord"]


@dataclass(frozen=True, slots=True)
class PoolRecord:
    """What the store keeps of one pool: admin drain, reachability, last known capacity."""

    name: str
    drained: bool
    drain_reason: str
    reachable: bool
    unreachable_reason: str
    updated_at: datetime
    capacity: tuple[NodeSnapshot, ...] | None = None  # None = never reached
