"""Identities (users, groups, API tokens, object permissions) and the API's columns of job results and files.

Revision ID: 0002_identity
Revises: 0001_initial
Create Date: 2026-11-25 22:22:03.693810

"""
from collections.abc import Sequence
from typing import Union

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '0002_identity'
down_revision: Union[str, Sequence[str], None] = '0001_initial'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('users_group',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=150), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users_group')),
    sa.UniqueConstraint('name', name=op.f('uq_users_group_name'))
    )
    op.create_table('users_object_permission',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('enabled', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('object_types', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('actions', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('constraints', sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True, astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users_object_permission')),
    sa.UniqueConstraint('name', name=op.f('uq_users_object_permission_name'))
    )
    op.create_table('users_user',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('username', sa.String(length=150), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('is_superuser', sa.Boolean(), nullable=False),
    sa.Column('is_active', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('date_joined', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users_user')),
    sa.UniqueConstraint('username', name=op.f('uq_users_user_username'))
    )
    op.create_table('users_object_permission_groups',
    sa.Column('permission_id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['users_group.id'], name=op.f('fk_users_object_permission_groups_group_id_users_group'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['permission_id'], ['users_object_permission.id'], name=op.f('fk_users_object_permission_groups_permission_id_users_object_permission'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('permission_id', 'group_id', name=op.f('pk_users_object_permission_groups'))
    )
    with op.batch_alter_table('users_object_permission_groups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_object_permission_groups_group_id'), ['group_id'], unique=False)

    op.create_table('users_object_permission_users',
    sa.Column('permission_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['permission_id'], ['users_object_permission.id'], name=op.f('fk_users_object_permission_users_permission_id_users_object_permission'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users_user.id'], name=op.f('fk_users_object_permission_users_user_id_users_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('permission_id', 'user_id', name=op.f('pk_users_object_permission_users'))
    )
    with op.batch_alter_table('users_object_permission_users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_object_permission_users_user_id'), ['user_id'], unique=False)

    op.create_table('users_token',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('key_prefix', sa.String(length=8), nullable=False),
    sa.Column('created', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used', sa.DateTime(timezone=True), nullable=True),
    sa.Column('write_enabled', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users_user.id'], name=op.f('fk_users_token_user_id_users_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users_token')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_users_token_key_hash'))
    )
    with op.batch_alter_table('users_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_token_user_id'), ['user_id'], unique=False)

    op.create_table('users_user_groups',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['users_group.id'], name=op.f('fk_users_user_groups_group_id_users_group'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users_user.id'], name=op.f('fk_users_user_groups_user_id_users_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', 'group_id', name=op.f('pk_users_user_groups'))
    )
    with op.batch_alter_table('file_proxy', schema=None) as batch_op:
        batch_op.add_column(sa.Column('input_for_result_id', sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f('ix_file_proxy_input_for_result_id'), ['input_for_result_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_file_proxy_input_for_result_id_job_result'), 'job_result', ['input_for_result_id'], ['id'], ondelete='CASCADE')

    with op.batch_alter_table('job_result', schema=None) as batch_op:
        batch_op.add_column(sa.Column('job_model_id', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('run_name', sa.String(length=253), nullable=True))
        batch_op.add_column(sa.Column('run_namespace', sa.String(length=63), nullable=True))
        batch_op.add_column(sa.Column('reason', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('message', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('commit', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('dry_run', sa.Boolean(), server_default=sa.false(), nullable=False))
    # Outside the batch: SQLite's batch mode cannot carry an index on expressions (DESC).
    op.create_index('ix_job_result_created_id', 'job_result', [sa.text('date_created DESC'), sa.text('id DESC')], unique=False)



def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_job_result_created_id', table_name='job_result')
    with op.batch_alter_table('job_result', schema=None) as batch_op:
        batch_op.drop_column('dry_run')
        batch_op.drop_column('commit')
        batch_op.drop_column('message')
        batch_op.drop_column('reason')
        batch_op.drop_column('run_namespace')
        batch_op.drop_column('run_name')
        batch_op.drop_column('job_model_id')

    with op.batch_alter_table('file_proxy', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_file_proxy_input_for_result_id_job_result'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_file_proxy_input_for_result_id'))
        batch_op.drop_column('input_for_result_id')

    op.drop_table('users_user_groups')
    with op.batch_alter_table('users_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_token_user_id'))

    op.drop_table('users_token')
    with op.batch_alter_table('users_object_permission_users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_object_permission_users_user_id'))

    op.drop_table('users_object_permission_users')
    with op.batch_alter_table('users_object_permission_groups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_object_permission_groups_group_id'))

    op.drop_table('users_object_permission_groups')
    op.drop_table('users_user')
    op.drop_table('users_object_permission')
    op.drop_table('users_group')
