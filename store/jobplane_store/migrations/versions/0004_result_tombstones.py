"""Tombstones of deleted job results, so the mirror of JobRuns never brings a deleted result back.

Revision ID: 0004_result_tombstones
Revises: 0003_list_indexes
Create Date: 2026-12-03 19:05:00

"""

from collections.abc import Sequence
from typing import Union

from alembic import op
import sqlalchemy as sa

revision: str = "0004_result_tombstones"
down_revision: Union[str, Sequence[str], None] = "0003_list_indexes"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table(
        "job_result_tombstone",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("run_name", sa.String(length=253), nullable=True),
        sa.Column("run_namespace", sa.String(length=63), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_by", sa.String(length=150), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_result_tombstone")),
    )


def downgrade() -> None:
    op.drop_table("job_result_tombstone")
