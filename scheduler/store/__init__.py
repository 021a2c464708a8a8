"""The durable store of sfed: jobs, attempts, append-only events and pools (SQLite or Postgres).

store = Store("sqlite:///var/lib/sfed/sfed.db")   # or postgresql+psycopg://user@host:port/db
store.migrate()                                     # Alembic upgrade to head; idempotent
"""

from scheduler.store.errors import StaleJob, StoreError, UnknownJob, UnknownPool
from scheduler.store.records import PoolRecord
from scheduler.store.repository import MIGRATIONS_DIR, Store

__all__ = [
    "MIGRATIONS_DIR",
    "PoolRecord",
    "StaleJob",
    "Store",
    "StoreError",
    "UnknownJob",
    "UnknownPool",
]
