"""Who approved a job result's run, and when: its JobRun's spec.approval, for approval-required jobs.

Revision ID: 0007_result_approval
Revises: 0006_result_scheduled_job
Create Date: 2026-12-06 06:55:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_result_approval"
down_revision: str | Sequence[str] | None = "0006_result_scheduled_job"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("job_result", sa.Column("approved_by", sa.String(length=253), nullable=True))
    op.add_column("job_result", sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("job_result", "approved_at")
    op.drop_column("job_result", "approved_by")
