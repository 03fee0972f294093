"""queue columns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 10:41:07.334574
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_token", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("raw", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("envelope_to", sa.JSON(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_messages_status_lease_expires_at"),
            ["status", "lease_expires_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_status_lease_expires_at"))
        batch_op.drop_column("envelope_to")
        batch_op.drop_column("raw")
        batch_op.drop_column("claim_token")
