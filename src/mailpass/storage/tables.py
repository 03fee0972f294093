"""The schema, as SQLAlchemy Core tables. Queries live in each domain's ``repository`` module.

Times are stored as naive UTC datetimes: SQLite has no time zones, and one convention for both
databases keeps comparisons (rolling limit windows, due times) identical on each.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "api_keys",
    "captured_mail",
    "events",
    "messages",
    "metadata",
    "providers",
    "users",
]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
    }
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255)),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("permissions", sa.String(100), nullable=False),
    sa.Column("is_test", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("last_used_at", sa.DateTime),
    sa.Column("revoked_at", sa.DateTime),
    sa.Index(None, "user_id"),
)

providers = sa.Table(
    "providers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("port", sa.Integer, nullable=False),
    sa.Column("security", sa.String(16), nullable=False),
    sa.Column("username", sa.String(255)),
    sa.Column("password_encrypted", sa.Text),
    sa.Column("from_email", sa.String(320)),
    sa.Column("from_name", sa.String(255)),
    sa.Column("hourly_limit", sa.Integer),
    sa.Column("daily_limit", sa.Integer),
    sa.Column("is_default", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("user_id", "name"),
    # At most one default provider per account, enforced by the database itself.
    sa.Index(
        "uq_providers_one_default",
        "user_id",
        unique=True,
        sqlite_where=sa.text("is_default"),
        postgresql_where=sa.text("is_default"),
    ),
)

messages = sa.Table(
    "messages",
    metadata,
    # The primary key doubles as the batch API's integer ``queue_id``.
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("provider_id", sa.ForeignKey("providers.id", ondelete="SET NULL")),
    sa.Column("message_id", sa.String(255), nullable=False, unique=True),
    sa.Column("from_email", sa.String(320), nullable=False),
    sa.Column("from_name", sa.String(255)),
    sa.Column("to_email", sa.String(1000), nullable=False),
    sa.Column("cc", sa.JSON, nullable=False),
    sa.Column("bcc", sa.JSON, nullable=False),
    sa.Column("reply_to", sa.String(1000)),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("html", sa.Text),
    sa.Column("text", sa.Text),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("user_metadata", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error_message", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("is_test", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("sent_at", sa.DateTime),
    # When the message took a slot of its provider's hourly/daily limit (NULL: it holds none).
    sa.Column("slot_at", sa.DateTime),
    # Queue state: when a queued message is due, and the claim a worker holds on it.
    sa.Column("next_attempt_at", sa.DateTime),
    sa.Column("lease_expires_at", sa.DateTime),
    sa.Column("claim_token", sa.String(32)),
    # The composed mail and its envelope, fixed when the message is accepted, so that every
    # attempt sends the very same bytes (same Date, same Message-ID).
    sa.Column("raw", sa.LargeBinary),
    sa.Column("envelope_to", sa.JSON),
    sa.Index(None, "provider_id", "slot_at"),
    sa.Index(None, "user_id", "created_at"),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "status", "lease_expires_at"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("message_pk", sa.ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    sa.Column("event_type", sa.String(32), nullable=False),
    sa.Column("ip_address", sa.String(64)),
    sa.Column("user_agent", sa.Text),
    sa.Column("url", sa.Text),
    sa.Column("data", sa.JSON),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Index(None, "message_pk", "id"),
)

# Mail sent with a test key (``mp_test_…``) never leaves the machine: it lands here.
captured_mail = sa.Table(
    "captured_mail",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE")),
    sa.Column("message_id", sa.String(255), nullable=False),
    sa.Column("envelope_from", sa.String(320), nullable=False),
    sa.Column("recipients", sa.JSON, nullable=False),
    sa.Column("raw", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Index(None, "user_id", "id"),
)
