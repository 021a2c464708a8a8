"""The Alembic migrations, on SQLite and on Postgres (see conftest.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import NullPool

from scheduler.domain import AttemptState, Outcome
from scheduler.store import MIGRATIONS_DIR, Store
from scheduler.store.models import Base
from tests.fixtures.jobs import at, request

TABLES = {"jobs", "attempts", "events", "pools"}


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _head() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


@contextmanager
def _engine(url: str) -> Iterator[Engine]:
    """An engine of its own (no pool), disposed on leaving."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def _alembic(url: str) -> Iterator[tuple[Config, Connection]]:
    """An Alembic config bound to one transaction on `url`, committed on leaving."""
    with _engine(url) as engine, engine.begin() as conn:
        cfg = _alembic_config()
        cfg.attributes["connection"] = conn
        yield cfg, conn


def _revision(url: str) -> str | None:
    with _engine(url) as engine, engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _tables(url: str) -> set[str]:
    with _engine(url) as engine:
        return set(inspect(engine).get_table_names())


def test_migrations_have_a_single_head() -> None:
    """The version scripts form one line: exactly one head."""
    assert len(ScriptDirectory.from_config(_alembic_config()).get_heads()) == 1


def test_migrate_creates_every_table_on_an_empty_database(empty_url: str) -> None:
    """migrate() on an empty database creates the tables and stamps the head revision."""
    assert _tables(empty_url) == set()
    with Store(empty_url) as store:
        store.migrate()
    assert _tables(empty_url) == TABLES | {"alembic_version"}
    assert _revision(empty_url) == _head()


def test_migrate_twice_is_idempotent(empty_url: str) -> None:
    """A second migrate() changes nothing and keeps the data."""
    with Store(empty_url) as store:
        store.migrate()
        job = store.add_job("alice", request(script=b"\x00data"), at(0))
        store.migrate()
        assert store.get_job(job.id) == job
    with Store(empty_url) as again:
        again.migrate()
        assert again.get_job(job.id) == job
    assert _revision(empty_url) == _head()


def test_migrated_schema_matches_the_models(empty_url: str) -> None:
    """Alembic's compare_metadata finds no difference between the migrated schema and models."""
    with Store(empty_url) as store:
        store.migrate()
    with _engine(empty_url) as engine, engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_history_queries_are_indexed(empty_url: str) -> None:
    """jobs has indexes on state, user, pool and submitted_at; events on (job_id, id)."""
    with Store(empty_url) as store:
        store.migrate()
    with _engine(empty_url) as engine:
        inspector = inspect(engine)
        jobs = {tuple(ix["column_names"]) for ix in inspector.get_indexes("jobs")}
        events = {tuple(ix["column_names"]) for ix in inspector.get_indexes("events")}
    assert {("state",), ("user",), ("pool",), ("submitted_at",)} <= jobs
    assert ("job_id", "id") in events


def test_downgrade_to_base_and_upgrade_again(empty_url: str) -> None:
    """The initial revision can be undone completely and applied again."""
    with Store(empty_url) as store:
        store.migrate()
    with _alembic(empty_url) as (cfg, _):
        command.downgrade(cfg, "base")
    assert _tables(empty_url) <= {"alembic_version"}
    with Store(empty_url) as store:
        store.migrate()
    assert _tables(empty_url) == TABLES | {"alembic_version"}


def test_upgrade_keeps_the_jobs_of_an_older_schema(empty_url: str) -> None:
    """A store at the first revision, with a job, attempts and events, upgrades to head intact."""
    with _alembic(empty_url) as (cfg, conn):
        command.upgrade(cfg, "0001")
        conn.execute(text(
            "INSERT INTO jobs (\"user\", state, script, job_name, nodes, gpus_per_node,"
            " cpus_per_task, environment, requeue, priority, submitted_at, updated_at,"
            " attempt, reason, cancel_requested) VALUES ('alice', 'PLACED', :script, 'j', 2,"
            " 4, 1, '{}', false, 0, :at, :at, 1, '', false)"
        ), {"script": b"#!/bin/sh\n", "at": at(0)})  # fmt: skip
        job_id = conn.execute(text("SELECT id FROM jobs")).scalar_one()
        conn.execute(text(
            "INSERT INTO attempts (job_id, number, pool, state, created_at, reason, nodelist)"
            " VALUES (:id, 1, 'beta', 'PENDING', :at, '', '')"
        ), {"id": job_id, "at": at(0)})  # fmt: skip
        conn.execute(text(
            "INSERT INTO events (job_id, at, kind, message) VALUES (:id, :at, 'placed', 'x')"
        ), {"id": job_id, "at": at(0)})  # fmt: skip
    with Store(empty_url) as store:
        store.migrate()
        job = store.get_job(job_id)
        assert job is not None and (job.user, job.request.separate_error) == ("alice", False)
        assert [a.pool for a in store.attempts(job_id)] == ["beta"]
        assert [e.kind for e in store.events(job_id)] == ["placed"]
    assert _revision(empty_url) == _head()


def test_concurrent_migrations_of_one_database_both_succeed(empty_url: str) -> None:
    """Two daemons migrating the same empty database at once: one waits for the other."""
    start = threading.Barrier(2)

    def migrate() -> None:
        with Store(empty_url) as store:
            start.wait()
            store.migrate()

    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(migrate) for _ in range(2)]:
            future.result()
    assert _revision(empty_url) == _head()


def test_foreign_keys_are_enforced(store: Store) -> None:
    """An attempt or event of a job that does not exist is refused by the database."""
    with pytest.raises(IntegrityError), store._engine.begin() as conn:
        conn.execute(
            text("INSERT INTO events (job_id, at, kind, message) VALUES (424242, :at, 'x', 'y')"),
            {"at": at(0).replace(tzinfo=None)},
        )
    job = store.add_job("alice", request(), at(0))
    store.begin_attempt(job.id, "beta", "placed", at(1))
    store.update_attempt(job.id, 1, AttemptState.RUNNING, at(2))  # the FK allows real ones


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    """On SQLite every connection is in WAL mode with a busy timeout and foreign keys on."""
    with Store(f"sqlite:///{tmp_path / 'sfed.db'}") as store:
        store.migrate()
        with store._engine.connect() as conn:
            pragmas = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "busy_timeout", "foreign_keys")
            }
    assert pragmas["journal_mode"] == "wal"
    assert int(str(pragmas["busy_timeout"])) >= 1000
    assert pragmas["foreign_keys"] == 1


def test_sqlite_migrate_creates_the_parent_directory(tmp_path: Path) -> None:
    """migrate() creates the directory of a new SQLite file."""
    path = tmp_path / "var" / "lib" / "sfed" / "sfed.db"
    with Store(f"sqlite:///{path}") as store:
        store.migrate()
    assert path.is_file()


def test_sqlite_in_memory_store_works_from_threads() -> None:
    """sqlite:// (in memory, for tests elsewhere) migrates and serves several threads."""
    with Store("sqlite://") as store:
        store.migrate()
        with ThreadPoolExecutor(4) as pool:
            ids = list(pool.map(lambda i: store.add_job("alice", request(), at(i)).id, range(40)))
        assert sorted(ids) == list(range(1, 41))
        assert len(store.list_jobs()) == 40


def _at_revision(url: str, revision: str, statements: list[tuple[str, dict[str, object]]]) -> None:
    """Migrate an empty database to `revision` and run `statements` there."""
    with _alembic(url) as (cfg, conn):
        command.upgrade(cfg, revision)
        for sql, params in statements:
            conn.execute(text(sql), params)


def test_upgrade_to_the_spec_document_keeps_every_request_field(empty_url: str) -> None:
    """A job stored in columns (revision 0002) reads back the same request from jobs.spec."""
    insert = (
        'INSERT INTO jobs ("user", state, script, job_name, nodes, ntasks, gpus_per_node,'
        " cpus_per_task, mem_per_node_mb, time_limit_min, partition, chdir, output, error,"
        " environment, requeue, priority, separate_error, submitted_at, updated_at, attempt,"
        " reason, cancel_requested) VALUES ('alice', 'COMPLETED', :script, 'train', 2, 16, 4,"
        " 6, 128000, 90, 'fed', '/shared/run', 'out-%j', 'err-%j', :env, true, 5, false,"
        " :at, :at, 1, '', false)"
    )
    params: dict[str, object] = {"script": b"#!/bin/sh\n\xff", "env": '{"LR": "0.1"}', "at": at(0)}
    attempt = (
        "INSERT INTO attempts (job_id, number, pool, state, created_at, reason, nodelist)"
        " VALUES (1, 1, 'beta', 'COMPLETED', :at, '', '')"
    )
    _at_revision(empty_url, "0002", [(insert, params), (attempt, {"at": at(0)})])
    with Store(empty_url) as store:
        store.migrate()
        job = store.get_job(1)
        [done] = store.attempts(1)
    expected = request(
        script=b"#!/bin/sh\n\xff",
        job_name="train",
        nodes=2,
        ntasks=16,
        gpus_per_node=4,
        cpus_per_task=6,
        mem_per_node_mb=128000,
        time_limit_min=90,
        partition="fed",
        chdir="/shared/run",
        output="out-%j",
        error="err-%j",
        environment={"LR": "0.1"},
        requeue=True,
        priority=5,
    )
    assert job is not None and job.request == expected
    assert done.outcome is Outcome.COMPLETED  # an ended attempt gets its state's outcome


def test_downgrade_from_the_spec_document_restores_the_columns(empty_url: str) -> None:
    """Downgrading to 0002 writes the request back into its columns."""
    with Store(empty_url) as store:
        store.migrate()
        store.add_job("alice", request(nodes=3, environment={"A": "1"}, separate_error=True), at(0))
    with _alembic(empty_url) as (cfg, conn):
        command.downgrade(cfg, "0002")
        row = conn.execute(text("SELECT nodes, separate_error, job_name FROM jobs")).one()
    assert (row.nodes, bool(row.separate_error), row.job_name) == (3, True, "sbatch")
