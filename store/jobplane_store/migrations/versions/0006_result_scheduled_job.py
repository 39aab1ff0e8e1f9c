"""A job result's scheduled job: the uid of the JobSchedule whose fire made its run, or NULL.

Indexed: a scheduled job's record counts its runs (total_run_count), and its results are listed by it.

Revision ID: 0006_result_scheduled_job
Revises: 0005_log_entry_sequence
Create Date: 2026-12-06 06:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_result_scheduled_job"
down_revision: str | Sequence[str] | None = "0005_log_entry_sequence"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("job_result", sa.Column("scheduled_job_id", sa.Uuid(), nullable=True))
    op.create_index("ix_job_result_scheduled_job_id", "job_result", ["scheduled_job_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_job_result_scheduled_job_id", table_name="job_result")
    op.drop_column("job_result", "scheduled_job_id")
