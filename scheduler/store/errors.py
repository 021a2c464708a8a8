"""Errors the store raises. Every one is a `StoreError`."""

from __future__ import annotations

__all__ = ["StaleJob", "StoreError", "UnknownJob", "UnknownPool"]


class StoreError(Exception):
    """Base of every error the store raises on purpose."""


class UnknownJob(StoreError, LookupError):
    """No job (or no such attempt of a job) with that id."""


class UnknownPool(StoreError, LookupError):
    """No pool row with that name (`ensure_pools` creates them)."""


class StaleJob(StoreError):
    """The job is no longer in the state the caller read: e.g. cancelled or placed meanwhile."""
