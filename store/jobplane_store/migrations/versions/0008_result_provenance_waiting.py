"""A job result's image digest (provenance, next to its commit) and why its run waits, from its JobRun.

Revision ID: 0008_result_provenance_waiting
Revises: 0007_result_approval
Create Date: 2026-12-06 10:15:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_result_provenance_waiting"
down_revision: str | Sequence[str] | None = "0007_result_approval"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("job_result", sa.Column("image_digest", sa.String(length=200), nullable=True))
    op.add_column("job_result", sa.Column("waiting_reason", sa.String(length=100), nullable=True))
    op.add_column("job_result", sa.Column("waiting_message", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("job_result", "waiting_message")
    op.drop_column("job_result", "waiting_reason")
    op.drop_column("job_result", "image_digest")
