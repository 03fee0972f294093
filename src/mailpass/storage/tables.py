"""The schema, as SQLAlchemy Core tables. Queries live in each domain's ``repository`` module.

Times are stored as naive UTC datetimes: SQLite has no time zones, and one convention for both
databases keeps comparisons (rolling limit windows, due times) identical on each.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = [
    "api_auth_failures",
    "api_keys",
    "bounce_streaks",
    "captured_mail",
    "dashboard_sessions",
    "dkim_keys",
    "events",
    "hook_receipts",
    "idempotency_keys",
    "message_contents",
    "messages",
    "metadata",
    "providers",
    "sending_domains",
    "signin_failures",
    "suppressions",
    "users",
    "webhook_deliveries",
    "webhook_endpoints",
    "workers",
]


def _where_set(column: str) -> dict[str, Any]:
    """An index's options that make it partial: only rows where ``column`` is not NULL."""
    condition = sa.column(column).is_not(None)
    return {"postgresql_where": condition, "sqlite_where": condition}


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
    # Open and click tracking of this provider's html mail, unless a request says otherwise.
    sa.Column("track_opens", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("track_clicks", sa.Boolean, nullable=False, server_default=sa.false()),
    # The circuit breaker (``providers.circuit``): failures to reach the provider in a row, the
    # times in a row it was marked down, until when it is down, and why.
    sa.Column("failure_streak", sa.Integer, nullable=False, server_default="0"),
    sa.Column("down_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("down_until", sa.DateTime),
    sa.Column("down_reason", sa.Text),
    # Its webhook (``intake``): the random token in the hook's URL, and the key its payloads are
    # checked with (SendGrid's public key, Mailgun's signing key), encrypted like the password.
    sa.Column("hook_token", sa.String(32)),
    sa.Column("hook_key_encrypted", sa.Text),
    # Failover: the account's providers (ids, in order) that take its mail when it cannot
    # (unreachable, timing out, deferring, marked down, at its limit); NULL: none.
    sa.Column("fallback_ids", sa.JSON),
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
    # Foreign keys on SQLite. On PostgreSQL, triggers keep the same promises and check an
    # INSERT's rows together, not one by one (migration 0008).
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
    # The worker (``workers.id``) holding the claim: when it stops beating, another takes the
    # message back without waiting for the lease. Not a foreign key: a dead worker's row is
    # deleted while claims of it may still be written.
    sa.Column("worker_id", sa.Integer),
    # Why a queued message waits when not for its own failed attempt: its provider is down, or
    # its hourly/daily limit is reached. Cleared when it is claimed.
    sa.Column("held_reason", sa.Text),
    # The envelope, fixed when the message is accepted; the composed mail, when it is kept
    # whole, is in ``message_contents``.
    sa.Column("envelope_to", sa.JSON),
    # Recipients already delivered to while others wait for a retry (direct delivery splits a
    # message by domain, and one domain may greylist): a retry leaves them out. NULL: none yet.
    sa.Column("delivered_to", sa.JSON),
    # Where it came in: "api" or "smtp" (the relay, ``mailpass.relay``).
    sa.Column("source", sa.String(8), nullable=False, server_default="api"),
    # Tracking: the random id that the message's tracking tokens name, the URLs its click
    # tokens lead to (a token holds only a position in this list), and the first open and click
    # that were not marked as a machine's.
    sa.Column("tracking_id", sa.String(32)),
    sa.Column("tracked_links", sa.JSON),
    sa.Column("first_opened_at", sa.DateTime),
    sa.Column("first_clicked_at", sa.DateTime),
    # The message's files as [{filename, content_type, size, content_id}]; their bytes are in
    # its ``message_contents`` row (a message with attachments is always kept whole). NULL: none.
    sa.Column("attachments", sa.JSON),
    # When the client asked for it to be sent (a scheduled send); NULL: at once.
    sa.Column("scheduled_at", sa.DateTime),
    # The status it was accepted with: ``queued`` (a batch item, a scheduled message) or
    # ``sending`` (/send); NULL for messages accepted before this was kept. With ``created_at``
    # it is the message's ``queued`` or ``scheduled`` event.
    sa.Column("accepted_as", sa.String(16)),
    # The provider's answer to the DATA that it accepted, e.g. ``250 2.0.0 Ok: queued as 4F2``:
    # with ``sent_at``, the message's ``sent`` event (and the provider's own id for the mail).
    sa.Column("provider_reply", sa.Text),
    # The provider's own id for the mail, when its reply gave one (``core.ids``): its
    # webhooks' events are matched to the message by it.
    sa.Column("provider_message_id", sa.String(255)),
    # Three of these hold only the rows whose last column is set: every query through them
    # compares that column, so none looks for the other rows, and a row is not written into
    # an index it cannot be found through. A queued message (no slot, lease or tracking id
    # yet) goes into four indexes, not seven. (A status alone is looked for: by the dashboard,
    # a provider's queued mail. So the due times' index keeps every row.)
    sa.Index(None, "provider_id", "slot_at", **_where_set("slot_at")),
    # Queued mail by provider: where a claim looks past providers with no room left.
    sa.Index(
        None,
        "provider_id",
        "next_attempt_at",
        postgresql_where=sa.text("status = 'queued' AND provider_id IS NOT NULL"),
        sqlite_where=sa.text("status = 'queued' AND provider_id IS NOT NULL"),
    ),
    sa.Index(None, "user_id", "created_at"),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "status", "lease_expires_at", **_where_set("lease_expires_at")),
    sa.Index(None, "tracking_id", unique=True, **_where_set("tracking_id")),
    sa.Index(None, "provider_message_id", **_where_set("provider_message_id")),
)

# A message's composed mail, fixed when the message is accepted so that every attempt is the
# very same mail. A message has no row here when its columns hold all its headers say (no
# display names in To, Cc or Reply-To, no html rewritten for tracking, no attachments): the
# worker composes it from them into the same bytes (``core.stored``). Apart from ``messages``
# because a message's row is written again at each change of its status, and SQLite writes a
# whole row each time: a mail kept inside it was written to disk again by every change.
message_contents = sa.Table(
    "message_contents",
    metadata,
    sa.Column(
        "message_pk",
        sa.ForeignKey("messages.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("raw", sa.LargeBinary, nullable=False),
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
    # A hit that is likely a machine's (a privacy proxy, a link scanner), and why in a few words.
    sa.Column("is_machine", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("machine_reason", sa.String(100)),
    sa.Index(None, "message_pk", "id"),
)

# Addresses an account no longer sends to: a hard bounce, a complaint, an unsubscribe, or added
# by hand. ``email`` is kept lower-cased, so that one address is one row whatever its case.
suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    # The message that led to it (its bounce, its complaint); NULL when added by hand.
    sa.Column("message_pk", sa.ForeignKey("messages.id", ondelete="SET NULL")),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Index(None, "user_id", "email", unique=True),
)

# What a provider's webhook has already brought: an SNS message, a SendGrid event, a Mailgun
# token. A payload seen again is a provider's retry (recorded once) or a replay (refused).
# Rows older than ``intake.service.RECEIPTS_KEPT`` are deleted; payloads that old are refused.
hook_receipts = sa.Table(
    "hook_receipts",
    metadata,
    sa.Column("provider_id", sa.ForeignKey("providers.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("receipt", sa.String(200), primary_key=True),
    sa.Column("received_at", sa.DateTime, nullable=False),
    sa.Index(None, "received_at"),
)

# Soft bounces of an address in a row, per account; a delivery to it ends the streak, and the
# address is suppressed when the streak reaches ``MAILPASS_SOFT_BOUNCE_LIMIT``.
bounce_streaks = sa.Table(
    "bounce_streaks",
    metadata,
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("email", sa.String(320), primary_key=True),
    sa.Column("soft_bounces", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

# Where an account wants its messages' events POSTed (``webhooks``), and which of them.
webhook_endpoints = sa.Table(
    "webhook_endpoints",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("url", sa.String(2000), nullable=False),
    # The signing secret (``whsec_…``), encrypted like provider passwords; shown once.
    sa.Column("secret_encrypted", sa.Text, nullable=False),
    sa.Column("event_types", sa.JSON, nullable=False),  # [] : every type
    sa.Column("enabled", sa.Boolean, nullable=False),
    # Since when every delivery to it failed (NULL: the last one worked); after a day of that
    # it is disabled, and why is said here.
    sa.Column("failing_since", sa.DateTime),
    sa.Column("disabled_reason", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Index(None, "user_id"),
)

# The outbox: one row an event and endpoint, written in the event's own transaction, so that
# nothing is lost between the event and its delivery; sent (and retried) by the dispatcher.
webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "endpoint_id", sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False
    ),
    # The message the event is about: its to, subject, tags and metadata join the body when it
    # is sent (they never change, so every attempt sends the same bytes).
    sa.Column("message_pk", sa.ForeignKey("messages.id", ondelete="CASCADE")),
    sa.Column("webhook_id", sa.String(40), nullable=False),  # the same on every attempt
    sa.Column("event_type", sa.String(32), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),  # the event's JSON, fixed when written
    sa.Column("state", sa.String(16), nullable=False),  # pending, delivered, failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime),
    sa.Column("lease_expires_at", sa.DateTime),
    sa.Column("claim_token", sa.String(32)),
    sa.Column("last_status", sa.Integer),  # the endpoint's HTTP status at the last attempt
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("delivered_at", sa.DateTime),
    sa.Index(None, "state", "next_attempt_at"),
    sa.Index(None, "endpoint_id", "id"),
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

# An ``Idempotency-Key`` of /send or /send-batch, scoped per account (and apart for test keys,
# whose mail never leaves) and kept 24 hours. While
# ``claim_token`` is set a request holds the key until ``locked_until``; once it is NULL the key
# has an answer, replayed to every retry of the same request.
idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("is_test", sa.Boolean, nullable=False),
    sa.Column("idempotency_key", sa.String(256), nullable=False),
    sa.Column("request_path", sa.String(255), nullable=False),
    # SHA-256 of the path and the canonical JSON body: the same request, whatever its key order.
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("claim_token", sa.String(32)),
    sa.Column("locked_until", sa.DateTime),
    sa.Column("response_status", sa.Integer),
    sa.Column("response_body", sa.LargeBinary),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("user_id", "is_test", "idempotency_key"),
    sa.Index(None, "user_id", "expires_at"),
)

# A dashboard sign-in. The cookie carries the signed random token; only its SHA-256 is kept, so a
# leaked table does not sign anyone in. ``password_fingerprint`` ends the session when the
# account's password changes.
dashboard_sessions = sa.Table(
    "dashboard_sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf_token", sa.String(64), nullable=False),
    sa.Column("password_fingerprint", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Index(None, "expires_at"),
)

# Failed dashboard sign-ins, counted per e-mail and per client address to lock out guessing.
signin_failures = sa.Table(
    "signin_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("ip_address", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Index(None, "email", "created_at"),
    sa.Index(None, "ip_address", "created_at"),
)

# Requests the API answered 401, per client address (``accounts.throttle``).
api_auth_failures = sa.Table(
    "api_auth_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("ip_address", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Index(None, "ip_address", "created_at"),
    sa.Index(None, "created_at"),
)

# The queue workers that run, each beating (``heartbeat_at``) every few seconds
# (``delivery.workers``).
workers = sa.Table(
    "workers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    # A random token of the process, told apart from an earlier one with the same pid.
    sa.Column("process", sa.String(32), nullable=False),
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("heartbeat_at", sa.DateTime, nullable=False),
    sa.Index(None, "heartbeat_at"),
    # Ids are never handed out twice, even after the newest worker's row is deleted.
    sqlite_autoincrement=True,
)

# An account's own domains, to send from through a ``direct`` provider (``domains``). A domain
# is verified once the DNS serves its active DKIM key (and SPF); the last check's findings, a
# list of records, each with what was expected and what was found, are kept for the pages.
sending_domains = sa.Table(
    "sending_domains",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(253), nullable=False),  # lower-case, IDNA (ASCII) form
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("checked_at", sa.DateTime),
    sa.Column("verified_at", sa.DateTime),
    sa.Column("check_results", sa.JSON),
    sa.UniqueConstraint("user_id", "name"),
)

# A domain's DKIM keys. ``pending``: made, not yet seen in the DNS (a rotation's new key);
# ``active``: the one mail is signed with; ``retired``: replaced, still listed (and to be kept in
# the DNS) until removed, so that mail signed with it in transit still verifies.
dkim_keys = sa.Table(
    "dkim_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("domain_id", sa.ForeignKey("sending_domains.id", ondelete="CASCADE"), nullable=False),
    sa.Column("selector", sa.String(63), nullable=False),
    sa.Column("algorithm", sa.String(16), nullable=False),
    sa.Column("public_key", sa.Text, nullable=False),
    sa.Column("private_key_encrypted", sa.Text, nullable=False),  # like provider passwords
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("activated_at", sa.DateTime),
    sa.UniqueConstraint("domain_id", "selector"),
)
