"""Store fixtures: every store test runs on SQLite and on Postgres.

`backend` is a session parameter; `store_url` is one migrated database per backend for the
session (a tmp SQLite file, or a fresh `sfed_test_<hex>` Postgres database dropped at the end),
and `store` empties it before each test. `empty_url` is a brand-new, unmigrated database.
Set SFED_TEST_PG (a libpq conninfo) to use another Postgres server than 127.0.0.1:5432.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from scheduler.store import Store

PG_CONNINFO = os.environ.get(
    "SFED_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)


class Postgres:
    """Creates throwaway databases on the test server and drops them all at the end."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self.created: list[str] = []
        with self._admin() as conn:
            query = "SELECT current_user, inet_server_addr(), inet_server_port()"
            row = conn.execute(query).fetchone()
        assert row is not None
        user, host, port = row
        self.url_prefix = f"postgresql+psycopg://{user}@{host or '127.0.0.1'}:{port or 5432}"

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5)

    def create(self) -> str:
        name = f"sfed_test_{secrets.token_hex(6)}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        return f"{self.url_prefix}/{name}"

    def drop_all(self) -> None:
        with self._admin() as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    try:
        server = Postgres(PG_CONNINFO)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no Postgres at 127.0.0.1:5432: {exc}".strip())
    yield server
    server.drop_all()


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
)
def backend(request: pytest.FixtureRequest) -> str:
    """The database under test: "sqlite" or "postgres"."""
    return str(request.param)


@pytest.fixture
def empty_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new database with no tables at all."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    server: Postgres = request.getfixturevalue("postgres")
    return server.create()


@pytest.fixture(scope="session")
def store_url(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """One migrated database per backend for the whole session."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'sfed.db'}"
    else:
        server: Postgres = request.getfixturevalue("postgres")
        url = server.create()
    with Store(url) as store:
        store.migrate()
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A Store on an empty, migrated database (ids start again at 1)."""
    s = Store(store_url)
    _empty(s)
    yield s
    s.close()


def _empty(store: Store) -> None:
    with store._engine.begin() as conn:
        if store.dialect == "postgresql":
            conn.execute(text("TRUNCATE events, attempts, jobs, pools RESTART IDENTITY CASCADE"))
        else:
            for table in ("events", "attempts", "jobs", "pools"):
                conn.execute(text(f"DELETE FROM {table}"))
            conn.execute(text("DELETE FROM sqlite_sequence"))
