"""provider webhooks: each provider's hook token and key, receipts, soft-bounce streaks

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

import secrets
import sqlite3

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("providers", sa.Column("hook_token", sa.String(32)))
    op.add_column("providers", sa.Column("hook_key_encrypted", sa.Text()))
    providers = sa.table("providers", sa.column("id", sa.Integer), sa.column("hook_token"))
    connection = op.get_bind()
    for (provider_id,) in connection.execute(sa.select(providers.c.id)).all():
        connection.execute(
            providers.update()
            .where(providers.c.id == provider_id)
            .values(hook_token=secrets.token_urlsafe(24))
        )
    op.create_table(
        "hook_receipts",
        sa.Column(
            "provider_id",
            sa.Integer(),
            sa.ForeignKey("providers.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("receipt", sa.String(200), primary_key=True),
        sa.Column("received_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_hook_receipts_received_at", "hook_receipts", ["received_at"])
    op.create_table(
        "bounce_streaks",
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("email", sa.String(320), primary_key=True),
        sa.Column("soft_bounces", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bounce_streaks")
    op.drop_index("ix_hook_receipts_received_at", "hook_receipts")
    op.drop_table("hook_receipts")
    # Not through batch mode, whose SQLite rebuild of ``providers`` would set every message's
    # provider to NULL (ON DELETE SET NULL): see 0015. Before SQLite 3.35 the columns stay.
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35, 0):
        return
    for column in ("hook_key_encrypted", "hook_token"):
        op.execute(f"ALTER TABLE providers DROP COLUMN {column}")
