"""a message's composed mail in a table of its own

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

``messages.raw`` moves to ``message_contents(message_pk, raw)``. A message's row is written
again at every change of its status; SQLite writes a whole row each time, so a mail kept in it
(a 100 KiB attachment makes it ~140 KB) was written to disk again by each status change. Out
here it is written once. On PostgreSQL its bytes are compressed with lz4 where the server has
it, as the bodies are (0006).

SQLite before 3.35 cannot drop a column: there ``messages.raw`` stays, emptied and unused.
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

DROP_COLUMN_SQLITE = (3, 35, 0)  # the first SQLite with ALTER TABLE ... DROP COLUMN


def upgrade() -> None:
    op.create_table(
        "message_contents",
        sa.Column(
            "message_pk",
            sa.Integer(),
            sa.ForeignKey("messages.id", ondelete="CASCADE"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
    )
    if _has_lz4():
        op.execute("ALTER TABLE message_contents ALTER COLUMN raw SET COMPRESSION lz4")
    op.execute(
        "INSERT INTO message_contents (message_pk, raw)"
        " SELECT id, raw FROM messages WHERE raw IS NOT NULL"
    )
    if _is_sqlite() and sqlite3.sqlite_version_info < DROP_COLUMN_SQLITE:
        op.execute("UPDATE messages SET raw = NULL")
    else:
        op.execute("ALTER TABLE messages DROP COLUMN raw")


def downgrade() -> None:
    if not _has_column("messages", "raw"):
        binary = "BLOB" if _is_sqlite() else "BYTEA"
        op.execute(f"ALTER TABLE messages ADD COLUMN raw {binary}")
        if _has_lz4():
            op.execute("ALTER TABLE messages ALTER COLUMN raw SET COMPRESSION lz4")
    op.execute(
        "UPDATE messages SET raw = (SELECT raw FROM message_contents"
        " WHERE message_contents.message_pk = messages.id)"
    )
    op.drop_table("message_contents")


def _is_sqlite() -> bool:
    return bool(op.get_bind().dialect.name == "sqlite")


def _has_lz4() -> bool:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return False
    methods = connection.execute(
        sa.text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    ).scalar()
    return "lz4" in (methods or [])


def _has_column(table: str, column: str) -> bool:
    return column in {found["name"] for found in sa.inspect(op.get_bind()).get_columns(table)}
