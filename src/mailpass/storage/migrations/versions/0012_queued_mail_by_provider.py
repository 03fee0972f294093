"""queued mail by provider

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07

A claim that found the oldest due mail all of providers with no room left (one that hangs, or
that has more mail than its share of a worker's places) looks for the other providers' due
mail: provider by provider, through this index of queued messages only, instead of reading
past every due message of the others (a full scan of the backlog on every such claim).
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

NAME = "ix_messages_provider_id_next_attempt_at"


def upgrade() -> None:
    # Not the test keys' mail (no provider), which is never looked for this way; and a
    # predicate the queue's first look (a bound status, no provider) cannot use by mistake.
    queued = text("status = 'queued' AND provider_id IS NOT NULL")
    op.create_index(
        NAME,
        "messages",
        ["provider_id", "next_attempt_at"],
        postgresql_where=queued,
        sqlite_where=queued,
    )


def downgrade() -> None:
    op.drop_index(NAME, table_name="messages")
