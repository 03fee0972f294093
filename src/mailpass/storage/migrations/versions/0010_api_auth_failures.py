"""failed API authentications, per client address

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07

Each request answered 401 leaves a row; an address with too many in the last minute is answered
429 RATE_LIMITED until the oldest of them is a minute old, by every process.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_auth_failures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("ip_address", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_api_auth_failures"),
    )
    op.create_index(
        "ix_api_auth_failures_ip_address_created_at",
        "api_auth_failures",
        ["ip_address", "created_at"],
    )
    op.create_index("ix_api_auth_failures_created_at", "api_auth_failures", ["created_at"])


def downgrade() -> None:
    op.drop_table("api_auth_failures")
