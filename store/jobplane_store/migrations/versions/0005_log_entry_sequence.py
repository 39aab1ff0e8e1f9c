"""An index of a result's log entries by id: a log stream asks for "this result's entries after id N".

With only (job_result_id, created), each read of a live stream walked every entry of the run to pick
those above N, so following a long log cost time in its length at every batch.

Revision ID: 0005_log_entry_sequence
Revises: 0004_result_tombstones
Create Date: 2026-12-03 21:25:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005_log_entry_sequence"
down_revision: str | Sequence[str] | None = "0004_result_tombstones"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_job_log_entry_result_id", "job_log_entry", ["job_result_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_job_log_entry_result_id", table_name="job_log_entry")
