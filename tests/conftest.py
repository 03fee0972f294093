"""Fixtures shared by every test: a real SMTP server (``smtp_fixtures``) and real SQLite and
PostgreSQL databases with the app on top (``db_fixtures``), and MailPass run as real processes
(``process_fixtures``)."""

pytest_plugins = ["smtp_fixtures", "db_fixtures", "process_fixtures"]
