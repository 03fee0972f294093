"""Fixtures shared by every test: a real SMTP server (``smtp_fixtures``) and real SQLite and
PostgreSQL databases with the app on top (``db_fixtures``), MailPass run as real processes
(``process_fixtures``), the app served on a real port in this process (``server_fixtures``), and
an HTTP server for webhooks to reach (``http_fixtures``), a DNS server (``dns_fixtures``), and
a queue drained by real workers (``queue_fixtures``)."""

pytest_plugins = [
    "smtp_fixtures",
    "db_fixtures",
    "process_fixtures",
    "server_fixtures",
    "http_fixtures",
    "dns_fixtures",
    "queue_fixtures",
]
