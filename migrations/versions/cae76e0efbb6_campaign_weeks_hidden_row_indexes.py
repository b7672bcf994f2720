"""campaign weeks (active participants per week), indexes of the rows boards hide

Revision ID: cae76e0efbb6
Revises: a20fc6416729
Create Date: 2026-11-25 06:57:44.849021

"""
from alembic import op
import sqlalchemy as sa

import backend.models.types


# revision identifiers, used by Alembic.
revision = 'cae76e0efbb6'
down_revision = 'a20fc6416729'
branch_labels = None
depends_on = None

HIDDEN = (("participations", ()), ("participant_days", ("local_date",)),
          ("participant_weeks", ("week_start",)))


def upgrade():
    op.create_table(
        "campaign_weeks",
        sa.Column("campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("active_participants", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name=op.f("fk_campaign_weeks_campaign_id_campaigns")),
        sa.PrimaryKeyConstraint("campaign_id", "week_start", name=op.f("pk_campaign_weeks")),
    )
    op.execute("""INSERT INTO campaign_weeks (campaign_id, week_start, active_participants)
                  SELECT campaign_id, week_start,
                         SUM(CASE WHEN reduction_mg > 0 THEN 1 ELSE 0 END)
                  FROM participant_weeks GROUP BY campaign_id, week_start""")
    sqlite = op.get_bind().dialect.name == "sqlite"
    predicate = "on_board = 0 AND reduction_mg > 0" if sqlite else \
        "NOT on_board AND reduction_mg > 0"
    for table, leading in HIDDEN:
        op.create_index(f"ix_{table}_hidden", table, ["campaign_id", *leading],
                        postgresql_where=sa.text(predicate), sqlite_where=sa.text(predicate))


def downgrade():
    for table, _ in HIDDEN:
        op.drop_index(f"ix_{table}_hidden", table_name=table)
    op.drop_table("campaign_weeks")
