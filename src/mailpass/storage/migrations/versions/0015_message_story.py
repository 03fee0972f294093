"""what a message's row tells of its story: how it was accepted, the provider's reply

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07

``messages.accepted_as`` is the status a message was accepted with (``queued`` or
``sending``), ``messages.provider_reply`` the provider's answer to the DATA it accepted. With
the row's times they are its ``queued``/``scheduled`` and ``sent`` events; the other events
(``deferred``, ``failed``, ``cancelled``, opens and clicks) are rows of ``events``, whose
``data`` holds what applies to each.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("accepted_as", sa.String(16)))
        batch.add_column(sa.Column("provider_reply", sa.Text))


def downgrade() -> None:
    # Not through batch mode: on SQLite it copies ``messages`` into a new table and drops the
    # old one, and dropping it deletes the rows that reference it (events, kept mail) by their
    # ON DELETE CASCADE. SQLite drops a column itself since 3.35; before, the columns stay.
    if op.get_bind().dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35, 0):
        return
    for column in ("provider_reply", "accepted_as"):
        op.execute(f"ALTER TABLE messages DROP COLUMN {column}")
