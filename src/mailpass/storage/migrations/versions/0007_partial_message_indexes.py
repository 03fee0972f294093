"""partial indexes on messages

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

Three indexes of ``messages`` now hold only the rows whose last indexed column is set: the
limits' slots, the queue's leases and the tracking ids. Each query through them compares that
column, so none looked for the rows left out, yet every insert and every update of a row
wrote it into all of them. A queued message goes into four indexes instead of seven, and the
lease and tracking indexes stay the size of the work in flight and of the tracked mail, not
of every message ever sent. The indexes are rebuilt, which reads the table once.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# name: (columns, unique)
INDEXES = {
    "ix_messages_provider_id_slot_at": (["provider_id", "slot_at"], False),
    "ix_messages_status_lease_expires_at": (["status", "lease_expires_at"], False),
    "ix_messages_tracking_id": (["tracking_id"], True),
}


def upgrade() -> None:
    for name, (columns, unique) in INDEXES.items():
        op.drop_index(name, table_name="messages")
        condition = text(f"{columns[-1]} IS NOT NULL")
        op.create_index(
            name,
            "messages",
            columns,
            unique=unique,
            postgresql_where=condition,
            sqlite_where=condition,
        )


def downgrade() -> None:
    for name, (columns, unique) in INDEXES.items():
        op.drop_index(name, table_name="messages")
        op.create_index(name, "messages", columns, unique=unique)
