"""a message's attachments; scheduled sending

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

``messages.attachments`` lists a message's files (name, media type, size, content id); their
bytes are in ``raw``, once. ``messages.scheduled_at`` is when a message was asked to be sent,
for one that was scheduled.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("attachments", sa.JSON))
        batch.add_column(sa.Column("scheduled_at", sa.DateTime))


def downgrade() -> None:
    # Not through batch mode: on SQLite it copies ``messages`` into a new table and drops the
    # old one, and dropping it deletes the rows that reference it (events, kept mail) by their
    # ON DELETE CASCADE. SQLite drops a column itself since 3.35; before, the columns stay.
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35, 0):
        return
    for column in ("scheduled_at", "attachments"):
        op.execute(f"ALTER TABLE messages DROP COLUMN {column}")
