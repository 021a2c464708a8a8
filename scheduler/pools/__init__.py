"""Pool adapters: the `Pool` protocol and its implementations (Slurm; Kubernetes later)."""

from scheduler.pools.base import Pool, PoolError, PoolUnreachable

__all__ = ["Pool", "PoolError", "PoolUnreachable"]
