"""where a message came in: the HTTP API or the SMTP relay

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-08

``messages.source``: ``api`` (every message so far) or ``smtp`` (``mailpass.relay``), shown in
the dashboard's log.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "messages", sa.Column("source", sa.String(8), nullable=False, server_default="api")
    )


def downgrade() -> None:
    # Not through batch mode (see 0015): SQLite drops a column itself since 3.35.
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35, 0):
        return
    op.execute("ALTER TABLE messages DROP COLUMN source")
