"""jobs.exit_signal and attempts.exit_signal: the signal that killed a batch script.

Kept beside the shell-style exit code (128 + the signal), so that the front door can end
its job as Slurm shows one killed by a signal (ExitCode 0:9, not 137:0).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("jobs", "attempts"):
        op.add_column(table, sa.Column("exit_signal", sa.Integer(), nullable=True))


def downgrade() -> None:
    for table in ("jobs", "attempts"):
        op.drop_column(table, "exit_signal")
