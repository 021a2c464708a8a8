"""Tables of the store, as SQLAlchemy 2 typed ORM classes.

The schema is created and changed only by the Alembic migrations in `migrations/versions`;
these classes must match them (tests/store/test_migrations.py checks there is no diff).
States are kept as their enum values in short strings; times as timezone-aware UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["AttemptRow", "Base", "EventRow", "JobRow", "PoolRow", "UTCDateTime"]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

STATE_LENGTH = 16


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime in, an aware UTC datetime out, on every backend.

    Postgres keeps `timestamptz`; SQLite has no time zones, so the value is stored as naive
    UTC text (fixed width: sorts and compares correctly) and UTC is put back on read.
    Naive datetimes are refused: their meaning depends on the machine.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: the store needs aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class JobRow(Base):
    """One federation job: the request as submitted and where it is now."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index(None, "state"),
        Index(None, "user"),
        Index(None, "pool"),
        Index(None, "submitted_at"),
        {"sqlite_autoincrement": True},  # ids are never reused
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(STATE_LENGTH))
    # The request: the script apart (bytes, and large), every other field in one versioned
    # JSON document (scheduler.spec), so that a new request field needs no new column.
    script: Mapped[bytes] = mapped_column(LargeBinary)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON(none_as_null=True))
    # Where it is.
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    pool: Mapped[str | None] = mapped_column(Text)
    remote_id: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    exit_signal: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    cancel_requested: Mapped[bool] = mapped_column(Boolean)
    # Each pool's verdict ([pool, fits, reason]) in the pass that placed the job or the
    # latest one it waited in; NULL before the first pass.
    verdicts: Mapped[list[list[Any]] | None] = mapped_column(JSON(none_as_null=True))
    # Set by clients that retry (the front-door proxy): one job per key, whatever the retries.
    client_key: Mapped[str | None] = mapped_column(Text, unique=True)


class AttemptRow(Base):
    """One placement of a job on one pool; (job_id, number) is its key."""

    __tablename__ = "attempts"
    __table_args__ = (Index(None, "state"),)

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    pool: Mapped[str] = mapped_column(Text)
    remote_id: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(STATE_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    exit_code: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    nodelist: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(STATE_LENGTH))  # how it ended
    exit_signal: Mapped[int | None] = mapped_column(Integer)


class EventRow(Base):
    """One line of a job's history. Append-only: the store never updates or deletes one."""

    __tablename__ = "events"
    __table_args__ = (
        Index(None, "job_id", "id"),
        {"sqlite_autoincrement": True},  # ids only grow: watchers resume after the last one seen
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    pool: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int | None] = mapped_column(Integer)


class PoolRow(Base):
    """What the federation remembers of a pool across restarts."""

    __tablename__ = "pools"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    drained: Mapped[bool] = mapped_column(Boolean)
    drain_reason: Mapped[str] = mapped_column(Text)
    reachable: Mapped[bool] = mapped_column(Boolean)
    unreachable_reason: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The last known nodes, as a list of NodeSnapshot dicts; NULL = never reached.
    capacity: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON(none_as_null=True))
