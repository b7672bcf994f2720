"""campaign document version

Revision ID: a20fc6416729
Revises: 08c45c58d1cf
Create Date: 2026-11-25 06:14:35.113413

"""
from alembic import op
import sqlalchemy as sa

import backend.models.types


# revision identifiers, used by Alembic.
revision = 'a20fc6416729'
down_revision = '08c45c58d1cf'
branch_labels = None


def upgrade():
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.add_column(sa.Column("doc_version", sa.Integer(), nullable=False,
                                      server_default="1"))


def downgrade():
    with op.batch_alter_table("campaigns") as batch_op:
        batch_op.drop_column("doc_version")
