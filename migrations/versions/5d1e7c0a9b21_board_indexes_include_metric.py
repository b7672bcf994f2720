"""board indexes carry reduction_mg (PostgreSQL: index-only counts)

Revision ID: 5d1e7c0a9b21
Revises: cae76e0efbb6
Create Date: 2026-11-25 07:05:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5d1e7c0a9b21'
down_revision = 'cae76e0efbb6'
branch_labels = None
depends_on = None

BOARDS = (("participations", ()), ("participant_days", ("local_date",)),
          ("participant_weeks", ("week_start",)))


def _recreate(include: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no INCLUDE; its board indexes stay as they are
    for table, leading in BOARDS:
        op.drop_index(f"ix_{table}_board", table_name=table)
        op.create_index(f"ix_{table}_board", table,
                        ["campaign_id", *leading, sa.literal_column("(-reduction_mg)"),
                         "reached_seq", "pid"],
                        postgresql_where=sa.text("on_board AND reduction_mg > 0"),
                        postgresql_include=["reduction_mg"] if include else [])


def upgrade():
    _recreate(include=True)


def downgrade():
    _recreate(include=False)
