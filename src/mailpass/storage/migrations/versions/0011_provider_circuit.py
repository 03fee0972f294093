"""a provider's circuit breaker; why a queued message is held

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07

A provider that keeps failing to answer (connections refused or timing out, 421 greetings) is
marked down for a while (``providers.down_until``, doubling each time), so that its mail waits
without taking the workers' places; ``messages.held_reason`` says why a queued message is
waiting when it is not for its own failed attempt.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("providers") as batch:
        batch.add_column(
            sa.Column("failure_streak", sa.Integer, nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("down_count", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("down_until", sa.DateTime))
        batch.add_column(sa.Column("down_reason", sa.Text))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("held_reason", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("held_reason")
    with op.batch_alter_table("providers") as batch:
        for column in ("down_reason", "down_until", "down_count", "failure_streak"):
            batch.drop_column(column)
