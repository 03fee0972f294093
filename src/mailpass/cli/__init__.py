"""The ``mailpass`` command: ``app`` holds the group and what its commands share; each other
module adds one family of commands to it."""

from __future__ import annotations

import os
import sys

import click

from mailpass.cli import accounts, domains, providers, sending, servers
from mailpass.cli.app import cli

__all__ = ["cli", "main"]

# The modules above register their commands on ``cli`` as they are imported.
COMMAND_MODULES = (servers, accounts, providers, domains, sending)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except Exception as exc:  # never a traceback for a user; MAILPASS_DEBUG=1 shows it
        if os.environ.get("MAILPASS_DEBUG"):
            raise
        click.echo(f"Error: {type(exc).__name__}: {exc}", err=True)
        sys.exit(1)
