"""jobs.separate_error: stderr to a file of its own when no error path is given.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# A plain ADD/DROP COLUMN on both backends: SQLite has both natively, and a batch
# (copy-and-rename) migration would have to drop `jobs`, which attempts and events reference.


def upgrade() -> None:
    op.add_column(
        "jobs", sa.Column("separate_error", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    op.drop_column("jobs", "separate_error")
