"""the provider's own id for a message, from its reply, to match its webhooks' events by

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07

``messages.provider_message_id`` is what the provider's answer to DATA named the mail
(``core.ids.provider_message_id``), indexed where it is set. Messages sent before keep NULL:
their events are matched by Message-ID alone, as before.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

INDEX = "ix_messages_provider_message_id"


def upgrade() -> None:
    op.add_column("messages", sa.Column("provider_message_id", sa.String(255)))
    condition = sa.column("provider_message_id").is_not(None)
    op.create_index(
        INDEX,
        "messages",
        ["provider_message_id"],
        postgresql_where=condition,
        sqlite_where=condition,
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="messages")
    # Not through batch mode (see 0015): SQLite drops a column itself since 3.35.
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35, 0):
        return
    op.execute("ALTER TABLE messages DROP COLUMN provider_message_id")
