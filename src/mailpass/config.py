"""Settings from ``MAILPASS_*`` environment variables: one ``Settings`` object per process."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mailpass.core.client_ip import IPNetwork, parse_networks, parse_trusted_senders

__all__ = ["Settings", "default_data_dir", "load_instance_secret"]

SECRET_FILE_NAME = "secret_key"  # noqa: S105  # a file name, not a secret
SECRET_FILE_MODE = 0o600


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/mailpass``, else ``~/.local/share/mailpass``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mailpass"


class Settings(BaseSettings):
    """Every knob of a MailPass process. Field ``x`` is read from ``MAILPASS_X``."""

    model_config = SettingsConfigDict(env_prefix="MAILPASS_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str | None = None
    secret_key: str | None = None
    public_url: str = "http://127.0.0.1:8000"
    # Proxies whose X-Forwarded-For names the client of a tracking hit: "10.0.0.5, 10.1.0.0/16".
    trusted_proxies: str = ""
    message_id_domain: str | None = None
    # Accept addresses at single-label hosts ("ops@mailhost"), as on some intranets.
    allow_single_label_domains: bool = False
    # A request's body; room for the attachments' limit in base64 (4/3 of it) and the rest.
    max_body_bytes: int = 16 * 1024 * 1024
    max_attachment_bytes: int = 10 * 1024 * 1024  # a message's attachments together, decoded
    max_header_bytes: int = 32 * 1024  # all of a request's header fields together
    request_body_timeout: float = 30.0  # seconds a request's body may take to arrive
    smtp_timeout: float = 30.0  # seconds, per SMTP command
    smtp_connect_timeout: float = 10.0  # seconds to connect to a provider and be greeted
    smtp_max_connections: int = 4  # per provider and per process
    smtp_ca_file: Path | None = None
    # Where providers may be: comma-separated addresses and networks; empty, anywhere. An
    # installation whose users add their own providers keeps them off its internal network.
    provider_networks: str = ""
    # A provider that many times in a row unreachable (refused, timed out, 421) is marked down
    # for the first pause, doubling each time it is still down, up to the longest.
    provider_failure_threshold: int = 3
    provider_down_first: float = 30.0  # seconds
    provider_down_most: float = 600.0  # seconds
    log_level: str = "info"
    # "json": one JSON object a line (time, level, logger, message, and the request id,
    # message id and account of what it was about), for a log collector; "text": for people.
    log_format: Literal["text", "json"] = "text"
    # GET /metrics on the API's own port, in Prometheus's text format (mailpass.monitoring);
    # `--metrics-port` serves it on a port of its own instead.
    metrics: bool = False

    # messages a worker process sends at once; one provider takes at most half of them
    worker_concurrency: int = 64
    queue_poll_interval: float = 1.0  # seconds between looks at the queue without a wake-up
    queue_lease: float = 300.0  # seconds a claimed message is a worker's before others retake it
    # seconds between a worker's beats; three missed, and others take back its messages
    worker_heartbeat_interval: float = 2.0
    retry_base_delay: float = 60.0  # seconds before the first retry; doubles each attempt
    retry_max_delay: float = 4 * 3600.0  # seconds, the longest wait between two attempts
    retry_give_up_after: float = 2 * 86400.0  # seconds after queueing: then the message fails

    # requests from one client address answered 401 within a minute before it is answered 429
    auth_failure_limit: int = 20
    # requests a second one API key may make (per server process); 0: no limit
    key_rate_limit: float = Field(default=0.0, ge=0)

    dashboard_session_lifetime: float = Field(default=12 * 3600.0, gt=0)  # seconds

    # Soft bounces of an address in a row (reported by a provider's webhook) that put it on the
    # account's suppression list; a delivery to it starts the count again.
    soft_bounce_limit: int = Field(default=3, ge=1)
    # Hosts that Amazon SNS's signing certificates and subscription confirmations may come
    # from (a full match, by regular expression): an SNS message names both URLs itself.
    sns_host_pattern: str = r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?"
    # The domain bounces come back to: mail sent through a plain SMTP provider gets the return
    # path ``bounces+<signed token>@<domain>`` (VERP), whose MX is MailPass's bounce listener.
    bounce_domain: str | None = None
    # Outbound webhooks: seconds an endpoint has to answer, and whether endpoints may be at
    # private addresses (loopback, 10/8, …): off, since an endpoint's URL is a user's input.
    webhook_timeout: float = Field(default=10.0, gt=0)
    webhooks_allow_private: bool = False
    # CA certificates MailPass's own HTTPS requests trust besides the system's (PEM).
    https_ca_file: Path | None = None

    # Direct delivery (``direct`` providers, ``providers.direct``) and sending domains.
    # The DNS server(s) to ask, "127.0.0.1" or "10.0.0.2:5353, 10.0.0.3"; empty: the system's
    # (/etc/resolv.conf). A split-horizon network names its inside resolver here.
    dns_resolver: str = ""
    dns_timeout: float = Field(default=5.0, gt=0)  # seconds for one DNS question, all tries
    # The port MX hosts are reached on: 25, always, but for a test network of local sinks.
    direct_port: int = Field(default=25, ge=1, le=65535)
    # "opportunistic": STARTTLS whenever offered, any certificate (as most of the Internet's
    # mail travels); "require": never in plain text, and the MX's certificate must be valid.
    # A domain that publishes an MTA-STS policy in "enforce" mode is always "require".
    direct_tls: Literal["opportunistic", "require"] = "opportunistic"
    # MTA-STS (RFC 8461): a recipient domain's policy in "enforce" mode is obeyed (TLS with a
    # valid certificate, only the MX hosts it names). The port its policy is fetched from is
    # 443 but for tests.
    direct_mta_sts: bool = True
    direct_mta_sts_port: int = Field(default=443, ge=1, le=65535)
    # Connections at once to one recipient domain, per process: a slow or greylisting domain
    # never takes more, so the others go on.
    direct_domain_connections: int = Field(default=5, ge=1)
    # The name given in EHLO to MX hosts (they check it against this host's reverse DNS);
    # empty: this host's fully qualified name.
    direct_helo: str = ""
    # What the SPF record of a sending domain must allow: MailPass's own sending address(es),
    # as SPF mechanisms ("ip4:203.0.113.5 ip6:2001:db8::5", or "include:_spf.example.net");
    # empty: "a mx" (the domain's own hosts), a start for a server that is also the domain's.
    direct_spf: str = ""
    # DKIM keys made for new sending domains: "rsa" (2048 bits) or "ed25519" (RFC 8463).
    dkim_algorithm: Literal["rsa", "ed25519"] = "rsa"

    # The SMTP relay (``mailpass.relay``: ``serve --smtp-port/--smtps-port``, ``mailpass smtp``).
    # Its certificate and key (PEM files, read again on SIGHUP); without them it offers no TLS.
    smtp_tls_cert: Path | None = None
    smtp_tls_key: Path | None = None
    # AUTH offered before TLS: for a relay listening on the loopback interface only.
    smtp_allow_plaintext_auth: bool = False
    # Networks that send without AUTH, each bound to one API key (by its id):
    # "10.0.0.0/8=3, 192.168.1.7=5" (Postal's "IP credentials"); empty: none.
    smtp_trusted_networks: str = ""
    # The name the relay greets with; empty: this host's fully qualified name.
    smtp_hostname: str = ""
    # Seconds a client may stay silent between commands, and that one message (from MAIL to
    # the end of its data) may take; then the session is closed.
    smtp_idle_timeout: float = Field(default=300.0, gt=0)
    smtp_message_timeout: float = Field(default=600.0, gt=0)
    # Flow control (Postfix's in_flow_delay): while more than this many queued messages are due
    # and a worker is running, each new message waits this long before MAIL FROM is answered,
    # so that a flood through the relay never starves the queue's delivery. 0: off.
    smtp_flow_backlog: int = Field(default=2_000, ge=0)
    smtp_flow_delay: float = Field(default=1.0, ge=0)
    # Sessions at once from one client address, and authenticated with one API key, per process.
    smtp_connections_per_address: int = Field(default=50, ge=1)
    smtp_connections_per_key: int = Field(default=100, ge=1)

    @field_validator(
        "max_body_bytes",
        "max_attachment_bytes",
        "max_header_bytes",
        "smtp_max_connections",
        "worker_concurrency",
        "auth_failure_limit",
        "provider_failure_threshold",
    )
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value

    @field_validator(
        "queue_poll_interval",
        "queue_lease",
        "retry_base_delay",
        "retry_max_delay",
        "smtp_timeout",
        "smtp_connect_timeout",
        "worker_heartbeat_interval",
        "request_body_timeout",
        "provider_down_first",
        "provider_down_most",
    )
    @classmethod
    def _positive_seconds(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be a positive number of seconds")
        return value

    @field_validator("trusted_proxies", "provider_networks")
    @classmethod
    def _networks(cls, value: str) -> str:
        parse_networks(value)  # raises ValueError naming the bad entry
        return value

    @field_validator("smtp_trusted_networks")
    @classmethod
    def _trusted_senders(cls, value: str) -> str:
        parse_trusted_senders(value)  # raises ValueError naming the bad entry
        return value

    @field_validator("sns_host_pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"is not a regular expression: {exc}") from None
        return value

    @property
    def trusted_proxy_networks(self) -> tuple[IPNetwork, ...]:
        return parse_networks(self.trusted_proxies)

    @property
    def provider_network_list(self) -> tuple[IPNetwork, ...] | None:
        """The networks providers may be in; None: anywhere."""
        return parse_networks(self.provider_networks) or None

    @property
    def resolved_database_url(self) -> str:
        """The database URL as given, or the embedded SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'mailpass.sqlite3'}"


def load_instance_secret(settings: Settings) -> str:
    """The instance secret: ``MAILPASS_SECRET_KEY``, else a file in the data directory.

    On first start the file is created with mode 0600 before anything is written to it, so the
    secret is never readable by other users, not even for a moment.
    """
    if settings.secret_key:
        return settings.secret_key
    path = settings.data_dir / SECRET_FILE_NAME
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_FILE_MODE)
    except FileExistsError:  # another process created it first: use theirs
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret
