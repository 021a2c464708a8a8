"""jobs.spec: the request as one versioned JSON document; jobs.verdicts; attempts.outcome.

The request's columns (job_name ... separate_error) become one document (scheduler.spec,
version 1); the script stays a column of its own. jobs.verdicts keeps each pool's verdict of
the latest placement pass, so that `explain` needs no text parsed back. attempts.outcome says
how an attempt ended (scheduler.domain.Outcome); older ended attempts get their state's default.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The request's columns before this revision, in JobRequest's order (script aside), with the
# default a downgrade gives the NOT NULL ones while it fills them (None: nullable).
_COLUMNS: list[tuple[str, Any, Any]] = [
    ("job_name", sa.Text(), sa.text("'sbatch'")),
    ("nodes", sa.Integer(), sa.text("1")),
    ("ntasks", sa.Integer(), None),
    ("gpus_per_node", sa.Integer(), sa.text("0")),
    ("cpus_per_task", sa.Integer(), sa.text("1")),
    ("mem_per_node_mb", sa.Integer(), None),
    ("time_limit_min", sa.Integer(), None),
    ("partition", sa.Text(), None),
    ("chdir", sa.Text(), None),
    ("output", sa.Text(), None),
    ("error", sa.Text(), None),
    ("environment", sa.JSON(none_as_null=True), sa.text("'{}'")),
    ("requeue", sa.Boolean(), sa.false()),
    ("priority", sa.Integer(), sa.text("0")),
    ("separate_error", sa.Boolean(), sa.false()),
]
_NAMES = [name for name, _, _ in _COLUMNS]
_BATCH = 1000
_OUTCOME_OF_STATE = {
    "COMPLETED": "COMPLETED",
    "FAILED": "FAILED",
    "CANCELLED": "CANCELLED",
    "LOST": "LOST",
}


def _jobs(columns: Sequence[str]) -> sa.TableClause:
    types = dict((name, kind) for name, kind, _ in _COLUMNS)
    types["spec"] = sa.JSON(none_as_null=True)
    return sa.table(
        "jobs", sa.column("id", sa.Integer()), *(sa.column(c, types[c]) for c in columns)
    )


def _rewrite(read: Sequence[str], write: Any) -> None:
    """Read `read` of every job in id order, in batches, and update each row with write(row)."""
    conn = op.get_bind()
    source = _jobs(read)
    target = _jobs([*_NAMES, "spec"])
    last = 0
    while True:
        rows = conn.execute(
            sa.select(source.c.id, *(source.c[c] for c in read))
            .where(source.c.id > last)
            .order_by(source.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        for row in rows:
            values = write(row._mapping)
            conn.execute(sa.update(target).where(target.c.id == row.id).values(**values))
        last = rows[-1].id


def _spec_of(row: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"v": 1}
    for name in _NAMES:
        value = row[name]
        if name == "environment" and isinstance(value, str):  # some drivers return text
            value = json.loads(value)
        spec[name] = bool(value) if name in ("requeue", "separate_error") else value
    return {"spec": spec}


def _columns_of(row: Any) -> dict[str, Any]:
    spec = row["spec"]
    if isinstance(spec, str):
        spec = json.loads(spec)
    defaults = {"job_name": "sbatch", "nodes": 1, "gpus_per_node": 0, "cpus_per_task": 1}
    defaults |= {"environment": {}, "requeue": False, "priority": 0, "separate_error": False}
    return {name: spec.get(name, defaults.get(name)) for name in _NAMES}


def upgrade() -> None:
    # NOT NULL from the start (SQLite cannot add the constraint later without copying `jobs`,
    # which attempts and events reference): '{}' until the rows are rewritten, which no
    # reader accepts as a request, so a row this migration missed fails loudly.
    spec = sa.Column("spec", sa.JSON(none_as_null=True), nullable=False, server_default="{}")
    op.add_column("jobs", spec)
    _rewrite(_NAMES, _spec_of)
    for name in _NAMES:
        op.drop_column("jobs", name)
    op.add_column("jobs", sa.Column("verdicts", sa.JSON(none_as_null=True), nullable=True))
    op.add_column("attempts", sa.Column("outcome", sa.String(16), nullable=True))
    attempts = sa.table("attempts", sa.column("state", sa.String(16)), sa.column("outcome"))
    for state, outcome in _OUTCOME_OF_STATE.items():
        op.execute(attempts.update().where(attempts.c.state == state).values(outcome=outcome))


def downgrade() -> None:
    op.drop_column("attempts", "outcome")
    op.drop_column("jobs", "verdicts")
    for name, kind, default in _COLUMNS:
        op.add_column(
            "jobs", sa.Column(name, kind, nullable=default is None, server_default=default)
        )
    _rewrite(["spec"], _columns_of)
    op.drop_column("jobs", "spec")
