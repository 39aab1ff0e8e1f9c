"""Indexes that serve the API's list pages: newest first, per status and per user.

Measured with bench/api_results.py (100k results): the planner walked the single-column date_created index
and re-sorted by (date_created, id) for deep pages; the composite index covers it, so it goes. A permission
constrained to the requesting user ({"user": "$user"}) counted with a sequential scan.

Revision ID: 0003_list_indexes
Revises: 0002_identity
Create Date: 2026-11-25 23:20:00

"""
from collections.abc import Sequence
from typing import Union

from alembic import op
import sqlalchemy as sa

revision: str = '0003_list_indexes'
down_revision: Union[str, Sequence[str], None] = '0002_identity'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.drop_index('ix_job_result_date_created', table_name='job_result')
    op.drop_index('ix_job_result_status_created', table_name='job_result')
    op.create_index(
        'ix_job_result_status_created', 'job_result',
        ['status', sa.text('date_created DESC'), sa.text('id DESC')], unique=False,
    )
    op.create_index(
        'ix_job_result_user_created', 'job_result',
        ['user', sa.text('date_created DESC'), sa.text('id DESC')], unique=False,
    )


def downgrade() -> None:
    op.drop_index('ix_job_result_user_created', table_name='job_result')
    op.drop_index('ix_job_result_status_created', table_name='job_result')
    op.create_index('ix_job_result_status_created', 'job_result', ['status', 'date_created'], unique=False)
    op.create_index('ix_job_result_date_created', 'job_result', ['date_created'], unique=False)
