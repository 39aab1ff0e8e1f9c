"""Initial schema: job results, their log entries and files.

Revision ID: 0001_initial
Revises: 
Create Date: 2026-11-25 19:42:46.292277

"""
from collections.abc import Sequence
from typing import Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '0001_initial'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('job_result',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('job_class_path', sa.String(length=255), nullable=False),
    sa.Column('user', sa.String(length=150), nullable=True),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('date_created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('date_started', sa.DateTime(timezone=True), nullable=True),
    sa.Column('date_done', sa.DateTime(timezone=True), nullable=True),
    sa.Column('result', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('traceback', sa.Text(), nullable=True),
    sa.Column('task_kwargs', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('queue', sa.String(length=100), nullable=True),
    sa.Column('soft_time_limit', sa.Float(), nullable=True),
    sa.Column('time_limit', sa.Float(), nullable=True),
    sa.Column('debug_log_count', sa.Integer(), nullable=False),
    sa.Column('info_log_count', sa.Integer(), nullable=False),
    sa.Column('success_log_count', sa.Integer(), nullable=False),
    sa.Column('warning_log_count', sa.Integer(), nullable=False),
    sa.Column('failure_log_count', sa.Integer(), nullable=False),
    sa.Column('error_log_count', sa.Integer(), nullable=False),
    sa.Column('critical_log_count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_result'))
    )
    with op.batch_alter_table('job_result', schema=None) as batch_op:
        batch_op.create_index('ix_job_result_class_path_created', ['job_class_path', 'date_created'], unique=False)
        batch_op.create_index(batch_op.f('ix_job_result_date_created'), ['date_created'], unique=False)
        batch_op.create_index('ix_job_result_status_created', ['status', 'date_created'], unique=False)

    op.create_table('file_proxy',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('job_result_id', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['job_result_id'], ['job_result.id'], name=op.f('fk_file_proxy_job_result_id_job_result'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_file_proxy'))
    )
    with op.batch_alter_table('file_proxy', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_file_proxy_job_result_id'), ['job_result_id'], unique=False)

    op.create_table('job_log_entry',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('job_result_id', sa.Uuid(), nullable=False),
    sa.Column('log_level', sa.String(length=10), nullable=False),
    sa.Column('grouping', sa.String(length=100), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('log_object', sa.String(length=200), nullable=True),
    sa.Column('absolute_url', sa.String(length=255), nullable=True),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_result_id'], ['job_result.id'], name=op.f('fk_job_log_entry_job_result_id_job_result'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_log_entry'))
    )
    with op.batch_alter_table('job_log_entry', schema=None) as batch_op:
        batch_op.create_index('ix_job_log_entry_result_created', ['job_result_id', 'created'], unique=False)



def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('job_log_entry', schema=None) as batch_op:
        batch_op.drop_index('ix_job_log_entry_result_created')

    op.drop_table('job_log_entry')
    with op.batch_alter_table('file_proxy', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_file_proxy_job_result_id'))

    op.drop_table('file_proxy')
    with op.batch_alter_table('job_result', schema=None) as batch_op:
        batch_op.drop_index('ix_job_result_status_created')
        batch_op.drop_index(batch_op.f('ix_job_result_date_created'))
        batch_op.drop_index('ix_job_result_class_path_created')

    op.drop_table('job_result')
