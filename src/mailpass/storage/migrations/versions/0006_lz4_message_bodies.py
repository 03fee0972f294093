"""lz4 for the message bodies on PostgreSQL

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01

A message row (its raw MIME, html and text) is ~3 KB, past PostgreSQL's 2 KB threshold, so
every insert compresses its bodies. With the default pglz, 100 rows took 3.3-3.9 ms to insert
here; with lz4 2.6-2.7 ms, stored as small (~1.4 KB a row). Rows written before keep their pglz
values, which stay readable. A server built without lz4 (or older than 14) keeps pglz. SQLite
does not compress.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BODY_COLUMNS = ("raw", "html", "text")


def upgrade() -> None:
    if "lz4" in _compression_methods():
        _set_compression("lz4")


def downgrade() -> None:
    if _compression_methods():
        _set_compression("DEFAULT")


def _compression_methods() -> list[str]:
    """What this PostgreSQL can compress with (nothing on SQLite, or before PostgreSQL 14)."""
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return []
    methods = connection.execute(
        text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    ).scalar()
    return list(methods or [])


def _set_compression(method: str) -> None:
    columns = ", ".join(
        f"ALTER COLUMN {column} SET COMPRESSION {method}" for column in BODY_COLUMNS
    )
    op.execute(f"ALTER TABLE messages {columns}")
