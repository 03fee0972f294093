"""tracking

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("track_opens", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("track_clicks", sa.Boolean(), server_default=sa.false(), nullable=False)
        )

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tracking_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("tracked_links", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("first_opened_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("first_clicked_at", sa.DateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_messages_tracking_id"), ["tracking_id"], unique=True)

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_machine", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("machine_reason", sa.String(length=100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("machine_reason")
        batch_op.drop_column("is_machine")

    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_tracking_id"))
        batch_op.drop_column("first_clicked_at")
        batch_op.drop_column("first_opened_at")
        batch_op.drop_column("tracked_links")
        batch_op.drop_column("tracking_id")

    with op.batch_alter_table("providers", schema=None) as batch_op:
        batch_op.drop_column("track_clicks")
        batch_op.drop_column("track_opens")
