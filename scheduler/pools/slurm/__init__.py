"""Slurm pools: a `SlurmPool` adapter over a local or SSH `Transport` to the Slurm CLI."""

from scheduler.pools.slurm.adapter import SlurmPool
from scheduler.pools.slurm.transport import (
    CommandResult,
    LocalTransport,
    MissingDependencyError,
    SSHTransport,
    Transport,
)

__all__ = [
    "CommandResult",
    "LocalTransport",
    "MissingDependencyError",
    "SSHTransport",
    "SlurmPool",
    "Transport",
]
