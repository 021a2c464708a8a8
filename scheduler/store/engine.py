"""The database engine a Store runs on: SQLite (WAL, busy timeout, explicit BEGINs) or
Postgres, with the settings each needs to be shared by several threads."""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Final

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.pool import StaticPool

__all__ = ["BEGIN_OPTION", "SQLITE_BUSY_TIMEOUT_MS", "is_memory", "open_engine"]

SQLITE_BUSY_TIMEOUT_MS: Final = 30_000
# Execution option naming the statement that begins a SQLite transaction (BEGIN or
# BEGIN IMMEDIATE), read by the "begin" hook below.
BEGIN_OPTION: Final = "sfed_sqlite_begin"


def is_memory(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def open_engine(url: URL, *, echo: bool = False) -> tuple[Engine, AbstractContextManager[Any]]:
    """The engine for `url`, and the lock its transactions must hold (an in-memory SQLite
    database is one connection: transactions take turns; otherwise no lock)."""
    sqlite_db = url.get_backend_name() == "sqlite"
    memory = is_memory(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if sqlite_db:
        kwargs["connect_args"] = {
            "check_same_thread": False,
            "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
        }
        if memory:  # one shared connection, else each connection has its own database
            kwargs["poolclass"] = StaticPool
    else:
        kwargs["pool_pre_ping"] = True  # a restarted server must not fail the next call
        kwargs["connect_args"] = {"connect_timeout": 10}
    engine = create_engine(url, **kwargs)
    if sqlite_db:
        _install_sqlite_hooks(engine)
    serial: AbstractContextManager[Any] = threading.RLock() if memory else nullcontext()
    return engine, serial


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
        conn.exec_driver_sql(conn.get_execution_options().get(BEGIN_OPTION, "BEGIN"))


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
