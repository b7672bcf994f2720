"""board visibility (on_board) on participations, days and weeks; partial board indexes

Revision ID: 08c45c58d1cf
Revises: ce999554e8fd
Create Date: 2026-11-25 06:05:31.187637

"""
from alembic import op
import sqlalchemy as sa

import backend.models.types


# revision identifiers, used by Alembic.
revision = '08c45c58d1cf'
down_revision = 'ce999554e8fd'
branch_labels = None
# A board's partial index: (campaign, period..., -metric, seq, pid) over the rows shown.
BOARDS = (("participations", ()), ("participant_days", ("local_date",)),
          ("participant_weeks", ("week_start",)))


def _create_board_index(table: str, leading: tuple[str, ...]) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    predicate = "on_board = 1 AND reduction_mg > 0" if sqlite else "on_board AND reduction_mg > 0"
    op.create_index(f"ix_{table}_board", table,
                    ["campaign_id", *leading, sa.literal_column("(-reduction_mg)"),
                     "reached_seq", "pid"],
                    postgresql_where=sa.text(predicate), sqlite_where=sa.text(predicate))


def upgrade():
    for table, _ in BOARDS:
        op.drop_index(f"ix_{table}_board", table_name=table)
    with op.batch_alter_table("participations") as batch_op:
        batch_op.add_column(sa.Column("on_board", sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
    op.execute("""UPDATE participations SET on_board = (disqualified_dt IS NULL AND EXISTS (
                      SELECT 1 FROM users u WHERE u.id = participations.user_id
                      AND u.on_leaderboard AND u.openid IS NOT NULL))""")
    for table in ("participant_days", "participant_weeks"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("pid", sa.String(length=32), nullable=False,
                                          server_default=""))
            batch_op.add_column(sa.Column("on_board", sa.Boolean(), nullable=False,
                                          server_default=sa.true()))
        op.execute(f"""UPDATE {table} SET
            pid = (SELECT p.pid FROM participations p WHERE p.id = {table}.participation_id),
            on_board = (SELECT p.on_board FROM participations p
                        WHERE p.id = {table}.participation_id)""")
    for table, leading in BOARDS:
        _create_board_index(table, leading)


def downgrade():
    for table, _ in BOARDS:
        op.drop_index(f"ix_{table}_board", table_name=table)
    for table in ("participant_weeks", "participant_days", "participations"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("on_board")
            if table != "participations":
                batch_op.drop_column("pid")
    op.create_index("ix_participations_board", "participations",
                    ["campaign_id", "reduction_mg", "reached_seq", "pid"])
    op.create_index("ix_participant_days_board", "participant_days",
                    ["campaign_id", "local_date", "reduction_mg", "reached_seq"])
    op.create_index("ix_participant_weeks_board", "participant_weeks",
                    ["campaign_id", "week_start", "reduction_mg", "reached_seq"])
