"""a message's attachments; scheduled sending

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07

``messages.attachments`` lists a message's files (name, media type, size, content id); their
bytes are in ``raw``, once. ``messages.scheduled_at`` is when a message was asked to be sent,
for one that was scheduled.
"""

from __future__ import annotations

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
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("scheduled_at")
        batch.drop_column("attachments")
