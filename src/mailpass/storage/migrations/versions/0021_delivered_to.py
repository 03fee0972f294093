"""the recipients a partly delivered message already reached

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08

``messages.delivered_to``: when direct delivery got a message to some recipient domains and
another deferred it (greylisting, an MX host down), the retry goes to the others alone.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("delivered_to", sa.JSON()))


def downgrade() -> None:
    # Not through batch mode (see 0015): SQLite drops a column itself since 3.35.
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35, 0):
        return
    op.execute("ALTER TABLE messages DROP COLUMN delivered_to")
