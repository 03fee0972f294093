"""``send``: one message through a running server's API, with the Python SDK."""

from __future__ import annotations

from typing import TextIO

import click

from mailpass.cli.app import (
    cli,
)


@cli.command("send")
@click.option("--to", "to", multiple=True, required=True, help="A recipient; repeat for more.")
@click.option("--subject", required=True)
@click.option("--text", help="Plain-text body.")
@click.option("--html", help="HTML body.")
@click.option(
    "--html-file",
    type=click.File("r", encoding="utf-8"),
    help="Read the HTML body from a file ('-': standard input).",
)
@click.option("--from", "from_email", help="Sender (default: the provider's sender).")
@click.option("--idempotency-key", help="Makes running the same command again safe.")
def send(
    to: tuple[str, ...],
    subject: str,
    text: str | None,
    html: str | None,
    html_file: TextIO | None,
    from_email: str | None,
    idempotency_key: str | None,
) -> None:
    """Send one message through a MailPass server and print its message id.

    Uses the Python SDK against $MAILPASS_API_URL (default http://127.0.0.1:8000) with the API
    key in $MAILPASS_API_KEY.
    """
    from mailpass.client import Client, MailPassError, ValidationError

    if html is not None and html_file is not None:
        raise click.UsageError("give --html or --html-file, not both")
    if html_file is not None:
        html = html_file.read()
    if not html and not text:
        raise click.UsageError("give a body: --text, --html or --html-file")
    try:
        with Client() as client:
            sent = client.mail.send(
                to=list(to) if len(to) > 1 else to[0],
                subject=subject,
                html=html,
                text=text,
                from_email=from_email,
                idempotency_key=idempotency_key,
            )
    except ValidationError as exc:
        for detail in exc.details:
            click.echo(f"  {detail.get('field')}: {detail.get('message')}", err=True)
        raise click.ClickException(str(exc)) from None
    except MailPassError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(sent.message_id)
