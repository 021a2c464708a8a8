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
import enum
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
from sqlalchemy import Engine, and_, create_engine, event, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from scheduler import lifecycle
from scheduler.domain import (
    TERMINAL_ATTEMPT_STATES,
    Attempt,
    AttemptState,
    Event,
    Job,
    JobRequest,
    JobState,
    NodeSnapshot,
    Outcome,
    PoolVerdict,
)
from scheduler.spec import from_spec, to_spec
from scheduler.store.errors import StaleJob, UnknownJob, UnknownPool
from scheduler.store.models import AttemptRow, EventRow, JobRow, PoolRow
from scheduler.store.records import PoolRecord

__all__ = ["MIGRATIONS_DIR", "Store"]

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS: Final = 30_000
_PG_MIGRATE_LOCK: Final = 0x5FED_0001  # pg_advisory_xact_lock key: one migrator at a time
_CHUNK: Final = 500  # ids per IN (...) in bulk statements
_BEGIN_OPTION: Final = "sfed_sqlite_begin"

_NODE_FIELDS: Final = frozenset(f.name for f in dataclasses.fields(NodeSnapshot))


class Store:
    """Jobs, their attempts and append-only events, and pools. See the module docstring.

    How a job moves is decided by scheduler.lifecycle, given the rows this store locks; the
    store writes what it decided, with the decision's event, in the same transaction.
    """

    def __init__(
        self, url: str, *, echo: bool = False, policy: lifecycle.Policy | None = None
    ) -> None:
        self.policy = policy or lifecycle.Policy()
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
        after: tuple[datetime, int] | None = None,
    ) -> list[Job]:
        """Jobs by submission time (oldest first unless `newest_first`), then id.

        `since` is inclusive and `until` exclusive, both on `submitted_at`; `pool` is the pool
        of the current attempt; an empty `states` matches nothing; `limit` keeps the first ones
        of the order asked (with `newest_first`, the newest). `after` = (submitted_at, id) of
        the last job of the previous page: only jobs past it in that order (keyset paging).
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
        if after is not None:
            at, last = _utc(after[0]), after[1]
            if newest_first:
                past = or_(
                    JobRow.submitted_at < at, and_(JobRow.submitted_at == at, JobRow.id < last)
                )
            else:
                past = or_(
                    JobRow.submitted_at > at, and_(JobRow.submitted_at == at, JobRow.id > last)
                )
            query = query.where(past)
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
            spec=to_spec(request),
            verdicts=None,
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

    def begin_attempt(
        self,
        job_id: int,
        pool: str,
        reason: str,
        now: datetime,
        *,
        verdicts: Sequence[PoolVerdict] = (),
    ) -> Attempt:
        """Record the intent to submit the job to `pool`, before the pool is asked.

        A new SUBMITTING attempt numbered job.attempt + 1; the job becomes PLACED on `pool`
        with `reason` (the placement's explanation) and the pass's `verdicts`; event "placed".
        Raises StaleJob when the job is no longer PENDING or a cancel was requested,
        UnknownJob when it does not exist.
        """
        now = _utc(now)
        with self._tx(write=True) as s:
            job = _lock_job(s, job_id)
            try:
                step = lifecycle.begin(_job(job), pool, tuple(verdicts), reason, now)
            except lifecycle.Stale as exc:
                raise StaleJob(str(exc)) from None
            assert step.attempt is not None
            row = AttemptRow(job_id=job_id, number=step.attempt.number)
            s.add(row)
            _persist(s, job, row, step, now)
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
            step = lifecycle.remote_accepted(_job(job), _attempt(row), remote_id, now)
            if step is not None:
                _persist(s, job, row, step, now)

    def update_attempt(
        self,
        job_id: int,
        attempt: int,
        state: AttemptState,
        now: datetime,
        *,
        outcome: Outcome | None = None,
        exit_code: int | None = None,
        reason: str = "",
        nodelist: str = "",
        started_at: datetime | None = None,
        ended_at: datetime | None = None,
    ) -> Job:
        """What the pool says of an attempt (see `lifecycle.observe`); returns the job after.

        Nothing is written (no event) when nothing changes, and a terminal attempt is never
        moved. Otherwise one event "state".
        """
        report = lifecycle.Report(
            AttemptState(state),
            outcome=outcome,
            exit_code=exit_code,
            reason=reason,
            nodelist=nodelist,
            started_at=_utc_or_none(started_at),
            ended_at=_utc_or_none(ended_at),
        )
        return self.report(job_id, attempt, report, now)

    def report(self, job_id: int, attempt: int, report: lifecycle.Report, now: datetime) -> Job:
        """`update_attempt` with a ready `lifecycle.Report`."""
        now = _utc(now)
        with self._tx(write=True) as s:
            job, row = _lock_attempt(s, job_id, attempt)
            step = lifecycle.observe(_job(job), _attempt(row), report, now)
            if step is not None:
                _persist(s, job, row, step, now)
            return _job(job)

    def abort_attempt(
        self, job_id: int, attempt: int, outcome: Outcome, reason: str, now: datetime
    ) -> Job:
        """The submission failed: REFUSED by the pool or NOT_SUBMITTED (it never arrived).

        The lifecycle decides (`lifecycle.submit_failed`, given the job's earlier attempts):
        the attempt FAILED with `reason`, the job back to the queue, FAILED after the policy's
        tries in a row, or CANCELLED when a cancel was requested; event "aborted". A
        terminal attempt is left as it is.
        """
        now = _utc(now)
        with self._tx(write=True) as s:
            job, row = _lock_attempt(s, job_id, attempt)
            earlier = s.scalars(
                select(AttemptRow)
                .where(AttemptRow.job_id == job_id, AttemptRow.number < attempt)
                .order_by(AttemptRow.number)
            )
            step = lifecycle.submit_failed(
                _job(job),
                _attempt(row),
                outcome,
                reason,
                now,
                self.policy,
                [_attempt(a) for a in earlier],
            )
            if step is not None:
                _persist(s, job, row, step, now)
            return _job(job)

    def note(
        self,
        job_id: int,
        kind: str,
        message: str,
        now: datetime,
        *,
        pool: str | None = None,
        attempt: int | None = None,
    ) -> None:
        """An event that records a fact for the job's owner and moves nothing (e.g. variables
        a pool left out of the job's environment). UnknownJob if the job does not exist."""
        now = _utc(now)
        with self._tx(write=True) as s:
            _lock_job(s, job_id)
            _append(s, job_id, now, kind, message, pool=pool, attempt=attempt)

    def request_cancel(self, job_id: int, now: datetime, *, by: str) -> Job:
        """Cancel (see `lifecycle.request_cancel`): a PENDING job is CANCELLED at once (event
        "cancelled"); a PLACED or RUNNING one is marked cancel_requested for the loop to cancel
        on its pool (event "cancel_requested"); a terminal or already marked job is unchanged.
        UnknownJob if absent.
        """
        now = _utc(now)
        with self._tx(write=True) as s:
            job = _lock_job(s, job_id)
            step = lifecycle.request_cancel(_job(job), by, now)
            if step is not None:
                _persist(s, job, None, step, now)
            return _job(job)

    def set_reason(
        self, job_id: int, reason: str, verdicts: Sequence[PoolVerdict] | None = None
    ) -> None:
        """Why a PENDING job waits (and each pool's verdict behind it). Written only if the
        reason changed; no event; other states ignored."""
        self.set_reasons({job_id: reason}, None if verdicts is None else {job_id: verdicts})

    def set_reasons(
        self,
        reasons: Mapping[int, str],
        verdicts: Mapping[int, Sequence[PoolVerdict]] | None = None,
    ) -> None:
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
                    | ({"verdicts": _verdict_rows(verdicts[job_id])} if verdicts else {})
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


# Job fields a lifecycle step may change; the request and the keys never change.
_JOB_MOVES: Final = (
    "state",
    "pool",
    "remote_id",
    "attempt",
    "exit_code",
    "reason",
    "cancel_requested",
    "started_at",
    "ended_at",
    "updated_at",
)
_ATTEMPT_MOVES: Final = (
    "pool",
    "remote_id",
    "state",
    "created_at",
    "started_at",
    "ended_at",
    "exit_code",
    "reason",
    "nodelist",
    "outcome",
)


def _persist(
    s: Session, job: JobRow, attempt: AttemptRow | None, step: lifecycle.Step, now: datetime
) -> None:
    """Write what the lifecycle decided into the locked rows, with its event."""
    for name in _JOB_MOVES:
        value = getattr(step.job, name)
        setattr(job, name, value.value if isinstance(value, enum.Enum) else value)
    if step.job.verdicts != _verdicts(job.verdicts):
        job.verdicts = _verdict_rows(step.job.verdicts) or None
    if attempt is not None and step.attempt is not None:
        for name in _ATTEMPT_MOVES:
            value = getattr(step.attempt, name)
            setattr(attempt, name, value.value if isinstance(value, enum.Enum) else value)
    if step.note is not None:
        note = step.note
        _append(s, job.id, now, note.kind, note.message, pool=note.pool, attempt=note.attempt)


def _verdict_rows(verdicts: Sequence[PoolVerdict]) -> list[list[Any]]:
    return [[v.pool, v.fits, v.reason] for v in verdicts]


def _verdicts(rows: Sequence[Sequence[Any]] | None) -> tuple[PoolVerdict, ...]:
    return tuple(PoolVerdict(str(p), bool(f), str(r)) for p, f, r in rows or ())


def _job(row: JobRow) -> Job:
    return Job(
        id=row.id,
        user=row.user,
        request=from_spec(row.script, row.spec),
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
        verdicts=_verdicts(row.verdicts),
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
        outcome=Outcome(row.outcome) if row.outcome else None,
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
