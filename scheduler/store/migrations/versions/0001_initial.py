"""The initial schema: jobs, attempts, events, pools.

Revision ID: 0001
Revises:
Create Date: 2025-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATE = sa.String(16)


def _when() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user", sa.Text(), nullable=False),
        sa.Column("state", STATE, nullable=False),
        sa.Column("script", sa.LargeBinary(), nullable=False),
        sa.Column("job_name", sa.Text(), nullable=False),
        sa.Column("nodes", sa.Integer(), nullable=False),
        sa.Column("ntasks", sa.Integer(), nullable=True),
        sa.Column("gpus_per_node", sa.Integer(), nullable=False),
        sa.Column("cpus_per_task", sa.Integer(), nullable=False),
        sa.Column("mem_per_node_mb", sa.Integer(), nullable=True),
        sa.Column("time_limit_min", sa.Integer(), nullable=True),
        sa.Column("partition", sa.Text(), nullable=True),
        sa.Column("chdir", sa.Text(), nullable=True),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("environment", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("requeue", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("submitted_at", _when(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.Column("started_at", _when(), nullable=True),
        sa.Column("ended_at", _when(), nullable=True),
        sa.Column("pool", sa.Text(), nullable=True),
        sa.Column("remote_id", sa.Text(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("client_key", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_jobs"),
        sa.UniqueConstraint("client_key", name="uq_jobs_client_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_jobs_state", "jobs", ["state"])
    op.create_index("ix_jobs_user", "jobs", ["user"])
    op.create_index("ix_jobs_pool", "jobs", ["pool"])
    op.create_index("ix_jobs_submitted_at", "jobs", ["submitted_at"])

    op.create_table(
        "attempts",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("pool", sa.Text(), nullable=False),
        sa.Column("remote_id", sa.Text(), nullable=True),
        sa.Column("state", STATE, nullable=False),
        sa.Column("created_at", _when(), nullable=False),
        sa.Column("started_at", _when(), nullable=True),
        sa.Column("ended_at", _when(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("nodelist", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "number", name="pk_attempts"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_attempts_job_id_jobs"),
    )
    op.create_index("ix_attempts_state", "attempts", ["state"])

    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("at", _when(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("pool", sa.Text(), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name="fk_events_job_id_jobs"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_job_id_id", "events", ["job_id", "id"])

    op.create_table(
        "pools",
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("drained", sa.Boolean(), nullable=False),
        sa.Column("drain_reason", sa.Text(), nullable=False),
        sa.Column("reachable", sa.Boolean(), nullable=False),
        sa.Column("unreachable_reason", sa.Text(), nullable=False),
        sa.Column("updated_at", _when(), nullable=False),
        sa.Column("capacity", sa.JSON(none_as_null=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_pools"),
    )


def downgrade() -> None:
    op.drop_table("pools")
    op.drop_index("ix_events_job_id_id", table_name="events")
    op.drop_table("events")
    op.drop_index("ix_attempts_state", table_name="attempts")
    op.drop_table("attempts")
    for column in ("submitted_at", "pool", "user", "state"):
        op.drop_index(f"ix_jobs_{column}", table_name="jobs")
    op.drop_table("jobs")
