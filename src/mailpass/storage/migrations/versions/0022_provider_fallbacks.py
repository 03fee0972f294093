"""providers' ordered fallbacks, for failover

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("providers", sa.Column("fallback_ids", sa.JSON()))


def downgrade() -> None:
    # Not through batch mode (see 0015): SQLite drops a column itself since 3.35.
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35, 0):
        return
    op.execute("ALTER TABLE providers DROP COLUMN fallback_ids")
