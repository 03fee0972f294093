"""sending domains and their DKIM keys; the ``domains`` permission

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08

Keys that could manage providers may manage sending domains too (a ``direct`` provider is of
no use without one): they are given the new ``domains`` permission. Other keys are unchanged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sending_domains",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("checked_at", sa.DateTime()),
        sa.Column("verified_at", sa.DateTime()),
        sa.Column("check_results", sa.JSON()),
        sa.UniqueConstraint("user_id", "name", name="uq_sending_domains_user_id_name"),
    )
    op.create_table(
        "dkim_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "domain_id",
            sa.Integer(),
            sa.ForeignKey("sending_domains.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("selector", sa.String(63), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("private_key_encrypted", sa.Text(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("activated_at", sa.DateTime()),
        sa.UniqueConstraint("domain_id", "selector", name="uq_dkim_keys_domain_id_selector"),
    )
    keys = sa.table("api_keys", sa.column("id", sa.Integer), sa.column("permissions", sa.Text))
    connection = op.get_bind()
    for key_id, permissions in connection.execute(sa.select(keys.c.id, keys.c.permissions)):
        held = set(permissions.split())
        if "providers" in held and "domains" not in held:
            connection.execute(
                keys.update()
                .where(keys.c.id == key_id)
                .values(permissions=" ".join(sorted(held | {"domains"})))
            )


def downgrade() -> None:
    op.drop_table("dkim_keys")
    op.drop_table("sending_domains")
