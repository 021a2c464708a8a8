"""The store: the federation's durable truth, on SQLite or Postgres.

Synchronous on purpose: the daemon calls it through `asyncio.to_thread`. Every public method
is one short transaction and returns frozen domain values, never ORM objects, so a `Store` may
be used from several threads at once (one engine and one sessionmaker per Store).

Writes that read first lock what they read: `SELECT ... FOR UPDATE` on Postgres, and on SQLite
every writing transaction starts with `BEGIN IMMEDIATE` (one writer at a time; readers never
block in WAL mode). So a cancel racing a placement is decided by whichever commits first, and
the other sees it.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from scheduler.domain import (
    TERMINAL_ATTEMPT_STATES,
    TERMINAL_JOB_STATES,
    Attempt,
    AttemptState,
    Event,
    Job,
    JobRequest,
    JobState,
    NodeSnapshot,
)
from scheduler.store.errors import StaleJob, UnknownJob, UnknownPool
from scheduler.store.models import AttemptRow, EventRow, JobRow, PoolRow
from scheduler.store.records import PoolRecord

__all__ = ["MIGRATIONS_DIR", "Store"]

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000
_PG_MIGRATE_LOCK: Final = 0x5FED_0001  # pg_advisory_xact_lock key: one migrator at a time
_CHUNK: Final = 500  # ids per IN (...) in bulk statements
_BEGIN_OPTION: Final = "sfed_sqlite_begin"

# The job follows its current attempt.
JOB_STATE_OF: Final[Mapping[AttemptState, JobState]] = {
    AttemptState.SUBMITTING: JobState.PLACED,
    AttemptState.PENDING: JobState.PLACED,
    AttemptState.RUNNING: JobState.RUNNING,
    AttemptState.COMPLETED: JobState.COMPLETED,
    AttemptState.FAILED: JobState.FAILED,
    AttemptState.CANCELLED: JobState.CANCELLED,
    AttemptState.LOST: JobState.FAILED,
}
_NODE_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(NodeSnapshot))


class Store:
    """Jobs, their attempts and append-only events, and pools. See the module docstring."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self._url: URL = make_url(url)
        self._sqlite = self._url.get_backend_name() == "sqlite"
        memory = self._sqlite and self._url.database in (None, "", ":memory:")
        kwargs: dict[str, Any] = {"echo": echo}
        if self._sqlite:
            kwargs["connect_args"] = {
                "check_same_thread": False,
                "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
            }
            if memory:  # one shared connection, else each connection has its own database
                kwargs["poolclass"] = StaticPool
        else:
            kwargs["pool_pre_ping"] = True  # a restarted server must not fail the next call
            kwargs["connect_args"] = {"connect_timeout": 10}
        self._engine: Engine = create_engine(self._url, **kwargs)
        if self._sqlite:
            _install_sqlite_hooks(self._engine)
        # An in-memory database is one connection: transactions must take turns.
        self._serial: AbstractContextManager[Any] = threading.RLock() if memory else nullcontext()
        self._sessions = sessionmaker(bind=self._engine, expire_on_commit=False)

    def __repr__(self) -> str:
        return f"Store({self._url.render_as_string(hide_password=True)!r})"

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        """The SQLAlchemy dialect name: "sqlite" or "postgresql"."""
        return self._engine.dialect.name

    # -- lifecycle ----------------------------------------------------------------------------

    def migrate(self) -> None:
        """Upgrade the schema to the newest revision. Idempotent; creates the SQLite file."""
        if self._sqlite and self._url.database not in (None, "", ":memory:"):
            Path(self._url.database).parent.mkdir(parents=True, exist_ok=True)
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
        with self._serial, self._engine.connect() as conn:
            if self._sqlite:
                conn.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})
            with conn.begin():
                if not self._sqlite:
                    lock = text("SELECT pg_advisory_xact_lock(:key)")
                    conn.execute(lock, {"key": _PG_MIGRATE_LOCK})
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")

    def close(self) -> None:
        """Close every pooled connection. The Store must not be used afterwards."""
        self._engine.dispose()

    # -- jobs: reads --------------------------------------------------------------------------

    def get_job(self, job_id: int) -> Job | None:
        with self._tx() as s:
            row = s.get(JobRow, job_id)
            return None if row is None else _job(row)

    def list_jobs(
        self,
        *,
        states: Collection[JobState] | None = None,
        user: str | None = None,
        pool: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[Job]:
        """Jobs by submission time (oldest first unless `newest_first`), then id.

        `since` is inclusive and `until` exclusive, both on `submitted_at`; `pool` is the pool
        of the current attempt; an empty `states` matches nothing; `limit` keeps the first ones
        of the order asked (with `newest_first`, the newest).
        """
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, not {limit}")
        query = select(JobRow)
        if states is not None:
            query = query.where(JobRow.state.in_([JobState(s).value for s in states]))
        if user is not None:
            query = query.where(JobRow.user == user)
        if pool is not None:
            query = query.where(JobRow.pool == pool)
        if since is not None:
            query = query.where(JobRow.submitted_at >= _utc(since))
        if until is not None:
            query = query.where(JobRow.submitted_at < _utc(until))
        if newest_first:
            query = query.order_by(JobRow.submitted_at.desc(), JobRow.id.desc())
        else:
            query = query.order_by(JobRow.submitted_at, JobRow.id)
        if limit is not None:
            query = query.limit(limit)
        with self._tx() as s:
            return [_job(row) for row in s.scalars(query)]

    def pending_jobs(self) -> list[Job]:
        """Jobs waiting in the federation queue (not cancel_requested), by id."""
        query = (
            select(JobRow)
            .where(JobRow.state == JobState.PENDING.value, JobRow.cancel_requested.is_(False))
            .order_by(JobRow.id)
        )
        with self._tx() as s:
            return [_job(row) for row in s.scalars(query)]

    def active_jobs(self) -> list[Job]:
        """Jobs PLACED or RUNNING on a pool, by id."""
        active = [JobState.PLACED.value, JobState.RUNNING.value]
        query = select(JobRow).where(JobRow.state.in_(active)).order_by(JobRow.id)
        with self._tx() as s:
            return [_job(row) for row in s.scalars(query)]

    def attempts(self, job_id: int) -> list[Attempt]:
        """The job's attempts by number; empty for an unknown job."""
        query = select(AttemptRow).where(AttemptRow.job_id == job_id).order_by(AttemptRow.number)
        with self._tx() as s:
            return [_attempt(row) for row in s.scalars(query)]

    def active_attempts(self) -> list[Attempt]:
        """Attempts of every job not yet in a terminal state, by job id and number."""
        query = (
            select(AttemptRow)
            .where(AttemptRow.state.not_in([st.value for st in TERMINAL_ATTEMPT_STATES]))
            .order_by(AttemptRow.job_id, AttemptRow.number)
        )
        with self._tx() as s:
            return [_attempt(row) for row in s.scalars(query)]

    def events(self, job_id: int, after_id: int = 0) -> list[Event]:
        """The job's events with an id above `after_id`, oldest first (ids only grow)."""
        query = (
            select(EventRow)
            .where(EventRow.job_id == job_id, EventRow.id > after_id)
            .order_by(EventRow.id)
        )
        with self._tx() as s:
            return [_event(row) for row in s.scalars(query)]

    # -- jobs: writes -------------------------------------------------------------------------

    def add_job(
        self, user: str, request: JobRequest, now: datetime, *, client_key: str | None = None
    ) -> Job:
        """A new PENDING job; event "submitted".

        With a `client_key` already used, no job is added and the existing one is returned:
        a client that retries after a lost answer gets the job it created the first time.
        """
        now = _utc(now)
        if client_key is not None:
            existing = self.job_by_key(client_key)
            if existing is not None:
                return existing
        row = JobRow(
            user=user,
            state=JobState.PENDING.value,
            script=bytes(request.script),
            job_name=request.job_name,
            nodes=request.nodes,
            ntasks=request.ntasks,
            gpus_per_node=request.gpus_per_node,
            cpus_per_task=request.cpus_per_task,
            mem_per_node_mb=request.mem_per_node_mb,
            time_limit_min=request.time_limit_min,
            partition=request.partition,
            chdir=request.chdir,
            output=request.output,
            error=request.error,
            environment=dict(request.environment),
            requeue=request.requeue,
            priority=request.priority,
            submitted_at=now,
            updated_at=now,
            started_at=None,
            ended_at=None,
            pool=None,
            remote_id=None,
            attempt=0,
            exit_code=None,
            reason="",
            cancel_requested=False,
            separate_error=request.separate_error,
            client_key=client_key,
        )
        try:
            with self._tx(write=True) as s:
                s.add(row)
                s.flush()
                _append(s, row.id, now, "submitted", f"submitted by {user}")
                return _job(row)
        except IntegrityError:
            # Two retries of one client raced; the other insert won.
            existing = self.job_by_key(client_key) if client_key is not None else None
            if existing is None:
                raise
            return existing

    def job_by_key_prefix(self, prefix: str) -> Job | None:
        """The newest job whose client key starts with `prefix` (e.g. "door/41/")."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = (
            select(JobRow)
            .where(JobRow.client_key.like(escaped + "%", escape="\\"))
            .order_by(JobRow.id.desc())
            .limit(1)
        )
        with self._tx() as s:
            row = s.scalars(query).one_or_none()
            return _job(row) if row is not None else None

    def job_by_key(self, client_key: str) -> Job | None:
        """The job a client created with this idempotency key, if any."""
        with self._tx() as s:
            row = s.scalars(select(JobRow).where(JobRow.client_key == client_key)).one_or_none()
            return _job(row) if row is not None else None

    def begin_attempt(self, job_id: int, pool: str, reason: str, now: datetime) -> Attempt:
        """Record the intent to submit the job to `pool`, before the pool is asked.

        A new SUBMITTING attempt numbered job.attempt + 1; the job becomes PLACED on `pool`
        with `reason` (the placement's explanation); event "placed". Raises StaleJob when the
        job is no longer PENDING or a cancel was requested, UnknownJob when it does not exist.
        """
        now = _utc(now)
        with self._tx(write=True) as s:
            job = _lock_job(s, job_id)
            if job.state != JobState.PENDING.value or job.cancel_requested:
                why = "cancel requested" if job.cancel_requested else job.state
                raise StaleJob(f"job {job_id} cannot be placed: {why}")
            number = job.attempt + 1
            row = AttemptRow(
                job_id=job_id,
                number=number,
                pool=pool,
                remote_id=None,
                state=AttemptState.SUBMITTING.value,
                created_at=now,
                started_at=None,
                ended_at=None,
                exit_code=None,
                reason="",
                nodelist="",
            )
            s.add(row)
            job.state = JobState.PLACED.value
            job.pool, job.attempt, job.remote_id, job.reason = pool, number, None, reason
            job.updated_at = now
            _append(s, job_id, now, "placed", reason, pool=pool, attempt=number)
            s.flush()
            return _attempt(row)

    def record_remote_id(self, job_id: int, attempt: int, remote_id: str, now: datetime) -> None:
        """The pool accepted attempt `attempt` as its job `remote_id`.

        A SUBMITTING attempt becomes PENDING; the job (when this is its current attempt) takes
        the remote id; event "submitted_remote". Recording the same id again does nothing.
        """
        now = _utc(now)
        with self._tx(write=True) as s:
            job, row = _lock_attempt(s, job_id, attempt)
            submitting = row.state == AttemptState.SUBMITTING.value
            if row.remote_id == remote_id and not submitting:
                return
            row.remote_id = remote_id
            if submitting:
                row.state = AttemptState.PENDING.value
            if job.attempt == attempt and job.state not in _TERMINAL_JOB_VALUES:
                job.remote_id = remote_id
                job.updated_at = now
            _append(
                s,
                job_id,
                now,
                "submitted_remote",
                f"{row.pool} job {remote_id}",
                pool=row.pool,
                attempt=attempt,
            )

    def update_attempt(
        self,
        job_id: int,
        attempt: int,
        state: AttemptState,
        now: datetime,
        *,
        exit_code: int | None = None,
        reason: str = "",
        nodelist: str = "",
        started_at: datetime | None = None,
        ended_at: datetime | None = None,
    ) -> Job:
        """What the pool says of an attempt; the job follows when it is its current attempt.

        Arguments left at None/"" keep what is recorded. RUNNING without a start time records
        `now` as the start; a terminal state without an end time records `now` as the end.
        Nothing is written (no event) when nothing changes, and a terminal attempt is never
        moved: the job is returned as it is. Otherwise one event "state".
        Job mapping: SUBMITTING/PENDING -> PLACED, RUNNING -> RUNNING, COMPLETED, FAILED,
        CANCELLED -> the same, LOST -> FAILED (with the reason).
        """
        state = AttemptState(state)
        now = _utc(now)
        started_at, ended_at = _utc_or_none(started_at), _utc_or_none(ended_at)
        with self._tx(write=True) as s:
            job, row = _lock_attempt(s, job_id, attempt)
            if row.state in _TERMINAL_ATTEMPT_VALUES:
                return _job(job)
            new: dict[str, Any] = {
                "state": state.value,
                "exit_code": row.exit_code if exit_code is None else exit_code,
                "reason": reason or row.reason,
                "nodelist": nodelist or row.nodelist,
                "started_at": started_at or row.started_at,
                "ended_at": ended_at or row.ended_at,
            }
            if state is AttemptState.RUNNING and new["started_at"] is None:
                new["started_at"] = now
            if state in TERMINAL_ATTEMPT_STATES and new["ended_at"] is None:
                new["ended_at"] = now
            if all(getattr(row, key) == value for key, value in new.items()):
                return _job(job)
            for key, value in new.items():
                setattr(row, key, value)
            if job.attempt == attempt and job.state not in _TERMINAL_JOB_VALUES:
                _follow(job, row, JOB_STATE_OF[state], reason, now)
            message = _state_message(state, row, exit_code=exit_code, reason=reason)
            _append(s, job_id, now, "state", message, pool=row.pool, attempt=attempt)
            s.flush()
            return _job(job)

    def abort_attempt(
        self, job_id: int, attempt: int, reason: str, now: datetime, *, back_to_pending: bool
    ) -> Job:
        """The submission failed: the attempt is FAILED with `reason`; event "aborted".

        When it is the job's current attempt, the job goes back to PENDING (pool and remote id
        cleared, to be placed again) if `back_to_pending`, else FAILED. A job whose cancel was
        requested is CANCELLED instead of going back to the queue. A terminal attempt is left
        as it is.
        """
        now = _utc(now)
        with self._tx(write=True) as s:
            job, row = _lock_attempt(s, job_id, attempt)
            if row.state in _TERMINAL_ATTEMPT_VALUES:
                return _job(job)
            row.state, row.reason, row.ended_at = AttemptState.FAILED.value, reason, now
            message = reason
            if job.attempt == attempt and job.state not in _TERMINAL_JOB_VALUES:
                job.updated_at, job.reason, job.pool, job.remote_id = now, reason, None, None
                if job.cancel_requested:
                    job.state, job.ended_at = JobState.CANCELLED.value, now
                    message += "; job cancelled as requested"
                elif back_to_pending:
                    job.state = JobState.PENDING.value
                    message += "; back in the queue"
                else:
                    job.state, job.ended_at = JobState.FAILED.value, now
                    message += "; job failed"
            _append(s, job_id, now, "aborted", message, pool=row.pool, attempt=attempt)
            s.flush()
            return _job(job)

    def request_cancel(self, job_id: int, now: datetime, *, by: str) -> Job:
        """Cancel: a PENDING job is CANCELLED at once (event "cancelled"); a PLACED or RUNNING
        one is marked cancel_requested for the loop to cancel on its pool (event
        "cancel_requested"); a terminal or already marked job is unchanged. UnknownJob if absent.
        """
        now = _utc(now)
        with self._tx(write=True) as s:
            job = _lock_job(s, job_id)
            if job.state == JobState.PENDING.value:
                job.state, job.cancel_requested = JobState.CANCELLED.value, True
                job.ended_at, job.updated_at = now, now
                job.reason = f"cancelled by {by}"
                _append(s, job_id, now, "cancelled", f"cancelled by {by} before it was placed")
            elif job.state not in _TERMINAL_JOB_VALUES and not job.cancel_requested:
                job.cancel_requested, job.updated_at = True, now
                _append(
                    s,
                    job_id,
                    now,
                    "cancel_requested",
                    f"cancel requested by {by}",
                    pool=job.pool,
                    attempt=job.attempt,
                )
            s.flush()
            return _job(job)

    def set_reason(self, job_id: int, reason: str) -> None:
        """Why a PENDING job waits. Written only if changed; no event; other states ignored."""
        self.set_reasons({job_id: reason})

    def set_reasons(self, reasons: Mapping[int, str]) -> None:
        """`set_reason` for many jobs in one transaction, writing only the changed rows."""
        if not reasons:
            return
        with self._tx(write=True) as s:
            changed: list[dict[str, Any]] = []
            ids = list(reasons)
            for start in range(0, len(ids), _CHUNK):
                query = select(JobRow.id, JobRow.reason).where(
                    JobRow.id.in_(ids[start : start + _CHUNK]),
                    JobRow.state == JobState.PENDING.value,
                )
                changed += [
                    {"id": job_id, "reason": reasons[job_id]}
                    for job_id, current in s.execute(query)
                    if current != reasons[job_id]
                ]
            if changed:
                s.execute(update(JobRow), changed)

    # -- pools --------------------------------------------------------------------------------

    def pools(self) -> dict[str, PoolRecord]:
        with self._tx() as s:
            rows = s.scalars(select(PoolRow).order_by(PoolRow.name))
            return {row.name: _pool(row) for row in rows}

    def ensure_pools(self, names: Iterable[str], now: datetime) -> None:
        """Insert a row (not drained, reachable, no capacity) for each pool that has none."""
        now = _utc(now)
        rows = [
            {
                "name": name,
                "drained": False,
                "drain_reason": "",
                "reachable": True,
                "unreachable_reason": "",
                "updated_at": now,
                "capacity": None,
            }
            for name in dict.fromkeys(names)
        ]
        if not rows:
            return
        insert = sqlite.insert if self._sqlite else postgresql.insert
        with self._tx(write=True) as s:
            s.execute(insert(PoolRow).values(rows).on_conflict_do_nothing(index_elements=["name"]))

    def set_pool_drained(self, name: str, drained: bool, reason: str, now: datetime) -> PoolRecord:
        """Drain (no new jobs, keeps its own) or resume a pool. UnknownPool if absent."""
        now = _utc(now)
        reason = reason if drained else ""
        with self._tx(write=True) as s:
            row = _lock_pool(s, name)
            if (row.drained, row.drain_reason) != (drained, reason):
                row.drained, row.drain_reason, row.updated_at = drained, reason, now
            s.flush()
            return _pool(row)

    def set_pool_reachable(
        self, name: str, reachable: bool, reason: str, now: datetime
    ) -> PoolRecord:
        """Whether the pool answers, and why not. Writes only on change. UnknownPool if absent."""
        now = _utc(now)
        reason = "" if reachable else reason
        with self._tx(write=True) as s:
            row = _lock_pool(s, name)
            if (row.reachable, row.unreachable_reason) != (reachable, reason):
                row.reachable, row.unreachable_reason, row.updated_at = reachable, reason, now
            s.flush()
            return _pool(row)

    def save_capacity(self, name: str, nodes: Sequence[NodeSnapshot], now: datetime) -> None:
        """The pool's nodes as last seen, kept for a restart. UnknownPool if absent."""
        now = _utc(now)
        capacity = [dataclasses.asdict(node) for node in nodes]
        with self._tx(write=True) as s:
            row = _lock_pool(s, name)
            row.capacity, row.updated_at = capacity, now

    # -- internals ----------------------------------------------------------------------------

    @contextmanager
    def _tx(self, *, write: bool = False) -> Iterator[Session]:
        """One transaction; committed on leaving, rolled back on an exception."""
        options = {_BEGIN_OPTION: "BEGIN IMMEDIATE"} if write and self._sqlite else None
        with self._serial, self._sessions.begin() as session:
            session.connection(execution_options=options)  # begins now, with those options
            yield session


_TERMINAL_JOB_VALUES: Final = frozenset(s.value for s in TERMINAL_JOB_STATES)
_TERMINAL_ATTEMPT_VALUES: Final = frozenset(s.value for s in TERMINAL_ATTEMPT_STATES)


def _install_sqlite_hooks(engine: Engine) -> None:
    """WAL, a busy timeout and foreign keys on every connection; explicit BEGINs.

    pysqlite's own transaction handling begins lazily (before the first write, not the first
    read), which would let a read-then-write transaction act on a stale read. It is turned off
    and SQLAlchemy's `begin` emits BEGIN (reads) or BEGIN IMMEDIATE (writes) itself.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            _enable_wal(cursor)
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")  # durable enough in WAL mode
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get(_BEGIN_OPTION, "BEGIN"))


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL (a persistent setting: only its first connection does it).

    The switch needs the database to itself and SQLite may refuse it at once, without waiting
    for the busy timeout, while another connection is creating the file: retry a while.
    """
    (mode,) = cursor.execute("PRAGMA journal_mode").fetchone()
    if str(mode).lower() in ("wal", "memory"):
        return
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: the store needs aware datetimes")
    return value.astimezone(UTC)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def _lock_job(s: Session, job_id: int) -> JobRow:
    row = s.get(JobRow, job_id, with_for_update=True)
    if row is None:
        raise UnknownJob(f"job {job_id} does not exist")
    return row


def _lock_attempt(s: Session, job_id: int, number: int) -> tuple[JobRow, AttemptRow]:
    job = _lock_job(s, job_id)  # always the job first, then the attempt: no deadlock
    row = s.get(AttemptRow, (job_id, number), with_for_update=True)
    if row is None:
        raise UnknownJob(f"job {job_id} has no attempt {number}")
    return job, row


def _lock_pool(s: Session, name: str) -> PoolRow:
    row = s.get(PoolRow, name, with_for_update=True)
    if row is None:
        raise UnknownPool(f"no pool named {name}")
    return row


def _append(
    s: Session,
    job_id: int,
    at: datetime,
    kind: str,
    message: str,
    *,
    pool: str | None = None,
    attempt: int | None = None,
) -> None:
    """Add one event. The only way the store writes events: there is no update or delete."""
    s.add(EventRow(job_id=job_id, at=at, kind=kind, message=message, pool=pool, attempt=attempt))


def _follow(job: JobRow, attempt: AttemptRow, state: JobState, reason: str, now: datetime) -> None:
    """Move the job after its current attempt."""
    if reason or job.state != state.value:
        job.reason = reason  # a new state drops the previous state's explanation
    job.state = state.value
    job.pool, job.remote_id, job.exit_code = attempt.pool, attempt.remote_id, attempt.exit_code
    if job.started_at is None and attempt.started_at is not None:
        job.started_at = attempt.started_at
    if state in TERMINAL_JOB_STATES:
        job.ended_at = attempt.ended_at or now
    job.updated_at = now


def _state_message(
    state: AttemptState, row: AttemptRow, *, exit_code: int | None, reason: str
) -> str:
    """E.g. "RUNNING on beta (job 123, nodes beta-n[1-2])", "FAILED exit 3", "LOST: why"."""
    text = state.value
    if state in TERMINAL_ATTEMPT_STATES:
        code = row.exit_code if exit_code is None else exit_code
        if code is not None:
            text += f" exit {code}"
    else:
        details = [f"job {row.remote_id}"] if row.remote_id else []
        if row.nodelist:
            details.append(f"nodes {row.nodelist}")
        text += f" on {row.pool}" + (f" ({', '.join(details)})" if details else "")
    return f"{text}: {reason}" if reason else text


def _job(row: JobRow) -> Job:
    return Job(
        id=row.id,
        user=row.user,
        request=JobRequest(
            script=bytes(row.script),
            job_name=row.job_name,
            nodes=row.nodes,
            ntasks=row.ntasks,
            gpus_per_node=row.gpus_per_node,
            cpus_per_task=row.cpus_per_task,
            mem_per_node_mb=row.mem_per_node_mb,
            time_limit_min=row.time_limit_min,
            partition=row.partition,
            chdir=row.chdir,
            output=row.output,
            error=row.error,
            environment={str(k): str(v) for k, v in row.environment.items()},
            requeue=row.requeue,
            priority=row.priority,
            separate_error=row.separate_error,
        ),
        state=JobState(row.state),
        submitted_at=row.submitted_at,
        updated_at=row.updated_at,
        pool=row.pool,
        remote_id=row.remote_id,
        attempt=row.attempt,
        exit_code=row.exit_code,
        reason=row.reason,
        cancel_requested=row.cancel_requested,
        started_at=row.started_at,
        ended_at=row.ended_at,
        client_key=row.client_key,
    )


def _attempt(row: AttemptRow) -> Attempt:
    return Attempt(
        job_id=row.job_id,
        number=row.number,
        pool=row.pool,
        state=AttemptState(row.state),
        created_at=row.created_at,
        remote_id=row.remote_id,
        started_at=row.started_at,
        ended_at=row.ended_at,
        exit_code=row.exit_code,
        reason=row.reason,
        nodelist=row.nodelist,
    )


def _event(row: EventRow) -> Event:
    return Event(
        id=row.id,
        job_id=row.job_id,
        at=row.at,
        kind=row.kind,
        message=row.message,
        pool=row.pool,
        attempt=row.attempt,
    )


def _pool(row: PoolRow) -> PoolRecord:
    capacity = None
    if row.capacity is not None:
        capacity = tuple(
            NodeSnapshot(**{k: v for k, v in node.items() if k in _NODE_FIELDS})
            for node in row.capacity
        )
    return PoolRecord(
        name=row.name,
        drained=row.drained,
        drain_reason=row.drain_reason,
        reachable=row.reachable,
        unreachable_reason=row.unreachable_reason,
        updated_at=row.updated_at,
        capacity=capacity,
    )
