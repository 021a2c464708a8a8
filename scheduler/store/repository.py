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
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, and_, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

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
from scheduler.spec import to_spec
from scheduler.store.engine import BEGIN_OPTION, is_memory, open_engine
from scheduler.store.errors import StaleJob
from scheduler.store.models import AttemptRow, EventRow, JobRow, PoolRow
from scheduler.store.records import PoolRecord
from scheduler.store.rows import (
    append_event,
    attempt_of,
    event_of,
    job_of,
    lock_attempt,
    lock_job,
    lock_pool,
    persist,
    pool_of,
    utc,
    utc_or_none,
    verdict_rows,
)

__all__ = ["MIGRATIONS_DIR", "Store"]

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATE_LOCK: Final = 0x5FED_0001  # pg_advisory_xact_lock key: one migrator at a time
_CHUNK: Final = 500  # ids per IN (...) in bulk statements


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
        self._engine: Engine
        self._engine, self._serial = open_engine(self._url, echo=echo)
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
        database = self._url.database
        if self._sqlite and database and not is_memory(self._url):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
        with self._serial, self._engine.connect() as conn:
            if self._sqlite:
                conn.execution_options(**{BEGIN_OPTION: "BEGIN IMMEDIATE"})
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
            return None if row is None else job_of(row)

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
            query = query.where(JobRow.submitted_at >= utc(since))
        if until is not None:
            query = query.where(JobRow.submitted_at < utc(until))
        if after is not None:
            at, last = utc(after[0]), after[1]
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
            return [job_of(row) for row in s.scalars(query)]

    def pending_jobs(self) -> list[Job]:
        """Jobs waiting in the federation queue (not cancel_requested), by id."""
        query = (
            select(JobRow)
            .where(JobRow.state == JobState.PENDING.value, JobRow.cancel_requested.is_(False))
            .order_by(JobRow.id)
        )
        with self._tx() as s:
            return [job_of(row) for row in s.scalars(query)]

    def active_jobs(self) -> list[Job]:
        """Jobs PLACED or RUNNING on a pool, by id."""
        active = [JobState.PLACED.value, JobState.RUNNING.value]
        query = select(JobRow).where(JobRow.state.in_(active)).order_by(JobRow.id)
        with self._tx() as s:
            return [job_of(row) for row in s.scalars(query)]

    def attempts(self, job_id: int) -> list[Attempt]:
        """The job's attempts by number; empty for an unknown job."""
        query = select(AttemptRow).where(AttemptRow.job_id == job_id).order_by(AttemptRow.number)
        with self._tx() as s:
            return [attempt_of(row) for row in s.scalars(query)]

    def active_attempts(self) -> list[Attempt]:
        """Attempts of every job not yet in a terminal state, by job id and number."""
        query = (
            select(AttemptRow)
            .where(AttemptRow.state.not_in([st.value for st in TERMINAL_ATTEMPT_STATES]))
            .order_by(AttemptRow.job_id, AttemptRow.number)
        )
        with self._tx() as s:
            return [attempt_of(row) for row in s.scalars(query)]

    def events(self, job_id: int, after_id: int = 0) -> list[Event]:
        """The job's events with an id above `after_id`, oldest first (ids only grow)."""
        query = (
            select(EventRow)
            .where(EventRow.job_id == job_id, EventRow.id > after_id)
            .order_by(EventRow.id)
        )
        with self._tx() as s:
            return [event_of(row) for row in s.scalars(query)]

    # -- jobs: writes -------------------------------------------------------------------------

    def add_job(
        self, user: str, request: JobRequest, now: datetime, *, client_key: str | None = None
    ) -> Job:
        """A new PENDING job; event "submitted".

        With a `client_key` already used, no job is added and the existing one is returned:
        a client that retries after a lost answer gets the job it created the first time.
        """
        now = utc(now)
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
                append_event(s, row.id, now, "submitted", f"submitted by {user}")
                return job_of(row)
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
            return job_of(row) if row is not None else None

    def job_by_key(self, client_key: str) -> Job | None:
        """The job a client created with this idempotency key, if any."""
        with self._tx() as s:
            row = s.scalars(select(JobRow).where(JobRow.client_key == client_key)).one_or_none()
            return job_of(row) if row is not None else None

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
        now = utc(now)
        with self._tx(write=True) as s:
            job = lock_job(s, job_id)
            try:
                step = lifecycle.begin(job_of(job), pool, tuple(verdicts), reason, now)
            except lifecycle.Stale as exc:
                raise StaleJob(str(exc)) from None
            assert step.attempt is not None
            row = AttemptRow(job_id=job_id, number=step.attempt.number)
            s.add(row)
            persist(s, job, row, step, now)
            s.flush()
            return attempt_of(row)

    def record_remote_id(self, job_id: int, attempt: int, remote_id: str, now: datetime) -> None:
        """The pool accepted attempt `attempt` as its job `remote_id`.

        A SUBMITTING attempt becomes PENDING; the job (when this is its current attempt) takes
        the remote id; event "submitted_remote". Recording the same id again does nothing.
        """
        now = utc(now)
        with self._tx(write=True) as s:
            job, row = lock_attempt(s, job_id, attempt)
            step = lifecycle.remote_accepted(job_of(job), attempt_of(row), remote_id, now)
            if step is not None:
                persist(s, job, row, step, now)

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
            started_at=utc_or_none(started_at),
            ended_at=utc_or_none(ended_at),
        )
        return self.report(job_id, attempt, report, now)

    def report(self, job_id: int, attempt: int, report: lifecycle.Report, now: datetime) -> Job:
        """`update_attempt` with a ready `lifecycle.Report`."""
        now = utc(now)
        with self._tx(write=True) as s:
            job, row = lock_attempt(s, job_id, attempt)
            step = lifecycle.observe(job_of(job), attempt_of(row), report, now)
            if step is not None:
                persist(s, job, row, step, now)
            return job_of(job)

    def abort_attempt(
        self, job_id: int, attempt: int, outcome: Outcome, reason: str, now: datetime
    ) -> Job:
        """The submission failed: REFUSED by the pool or NOT_SUBMITTED (it never arrived).

        The lifecycle decides (`lifecycle.submit_failed`, given the job's earlier attempts):
        the attempt FAILED with `reason`, the job back to the queue, FAILED after the policy's
        tries in a row, or CANCELLED when a cancel was requested; event "aborted". A
        terminal attempt is left as it is.
        """
        now = utc(now)
        with self._tx(write=True) as s:
            job, row = lock_attempt(s, job_id, attempt)
            earlier = s.scalars(
                select(AttemptRow)
                .where(AttemptRow.job_id == job_id, AttemptRow.number < attempt)
                .order_by(AttemptRow.number)
            )
            step = lifecycle.submit_failed(
                job_of(job),
                attempt_of(row),
                outcome,
                reason,
                now,
                self.policy,
                [attempt_of(a) for a in earlier],
            )
            if step is not None:
                persist(s, job, row, step, now)
            return job_of(job)

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
        now = utc(now)
        with self._tx(write=True) as s:
            lock_job(s, job_id)
            append_event(s, job_id, now, kind, message, pool=pool, attempt=attempt)

    def request_cancel(self, job_id: int, now: datetime, *, by: str) -> Job:
        """Cancel (see `lifecycle.request_cancel`): a PENDING job is CANCELLED at once (event
        "cancelled"); a PLACED or RUNNING one is marked cancel_requested for the loop to cancel
        on its pool (event "cancel_requested"); a terminal or already marked job is unchanged.
        UnknownJob if absent.
        """
        now = utc(now)
        with self._tx(write=True) as s:
            job = lock_job(s, job_id)
            step = lifecycle.request_cancel(job_of(job), by, now)
            if step is not None:
                persist(s, job, None, step, now)
            return job_of(job)

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
                    | ({"verdicts": verdict_rows(verdicts[job_id])} if verdicts else {})
                    for job_id, current in s.execute(query)
                    if current != reasons[job_id]
                ]
            if changed:
                s.execute(update(JobRow), changed)

    # -- pools --------------------------------------------------------------------------------

    def pools(self) -> dict[str, PoolRecord]:
        with self._tx() as s:
            rows = s.scalars(select(PoolRow).order_by(PoolRow.name))
            return {row.name: pool_of(row) for row in rows}

    def ensure_pools(self, names: Iterable[str], now: datetime) -> None:
        """Insert a row (not drained, reachable, no capacity) for each pool that has none."""
        now = utc(now)
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
        now = utc(now)
        reason = reason if drained else ""
        with self._tx(write=True) as s:
            row = lock_pool(s, name)
            if (row.drained, row.drain_reason) != (drained, reason):
                row.drained, row.drain_reason, row.updated_at = drained, reason, now
            s.flush()
            return pool_of(row)

    def set_pool_reachable(
        self, name: str, reachable: bool, reason: str, now: datetime
    ) -> PoolRecord:
        """Whether the pool answers, and why not. Writes only on change. UnknownPool if absent."""
        now = utc(now)
        reason = "" if reachable else reason
        with self._tx(write=True) as s:
            row = lock_pool(s, name)
            if (row.reachable, row.unreachable_reason) != (reachable, reason):
                row.reachable, row.unreachable_reason, row.updated_at = reachable, reason, now
            s.flush()
            return pool_of(row)

    def save_capacity(self, name: str, nodes: Sequence[NodeSnapshot], now: datetime) -> None:
        """The pool's nodes as last seen, kept for a restart. UnknownPool if absent."""
        now = utc(now)
        capacity = [dataclasses.asdict(node) for node in nodes]
        with self._tx(write=True) as s:
            row = lock_pool(s, name)
            row.capacity, row.updated_at = capacity, now

    # -- internals ----------------------------------------------------------------------------

    @contextmanager
    def _tx(self, *, write: bool = False) -> Iterator[Session]:
        """One transaction; committed on leaving, rolled back on an exception."""
        options = {BEGIN_OPTION: "BEGIN IMMEDIATE"} if write and self._sqlite else None
        with self._serial, self._sessions.begin() as session:
            session.connection(execution_options=options)  # begins now, with those options
            yield session
