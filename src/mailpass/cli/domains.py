"""``domains``: the sending domains direct providers send from, and their DKIM keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from mailpass.accounts import service as accounts
from mailpass.cli.app import cli, run_async, with_database
from mailpass.config import Settings, load_instance_secret
from mailpass.core.dns import Resolver
from mailpass.domains.dkim import ALGORITHMS
from mailpass.domains.models import SendingDomain
from mailpass.domains.service import DomainError, DomainService, record_answers
from mailpass.providers.secrets import SecretBox
from mailpass.storage.database import Database

T = TypeVar("T")


@cli.group("domains")
def domains_group() -> None:
    """Sending domains: DKIM keys and the DNS records to publish."""


async def _with_service(email: str, work: Callable[[DomainService, int], Awaitable[T]]) -> T:
    settings = Settings()

    async def run(database: Database) -> T:
        user = await accounts.require_user(database, email)
        service = DomainService(
            settings,
            database,
            SecretBox(load_instance_secret(settings)),
            Resolver(settings.dns_resolver, settings.dns_timeout),
        )
        try:
            return await work(service, user.id)
        except DomainError as exc:
            raise ValueError(str(exc)) from None

    return await with_database(settings, run)


async def _named(service: DomainService, user_id: int, name: str) -> SendingDomain:
    domain = await service.by_name(user_id, name.strip().lower().removesuffix("."))
    if domain is None:
        raise ValueError(f"the account has no domain {name}: add it first")
    return domain


def _echo_records(domain: SendingDomain) -> None:
    """One line a record: purpose, type, name, value, and what the last check found."""
    for record in record_answers(domain, Settings()):
        status = record["status"] or "unchecked"
        if not record["required"]:
            status += " (optional)"
        click.echo(f"{record['purpose']}\t{record['type']}\t{record['name']}\t{record['value']}")
        click.echo(f"\t{status}" + (f": {record['note']}" if record["note"] else ""))


@domains_group.command("add")
@click.option("--user", "email", required=True)
@click.option(
    "--algorithm",
    type=click.Choice(ALGORITHMS),
    help="The DKIM key's kind; default MAILPASS_DKIM_ALGORITHM (rsa, 2048 bits).",
)
@click.argument("name")
@run_async
async def domains_add(email: str, algorithm: str | None, name: str) -> None:
    """Add a domain; prints the DNS records to publish."""

    async def work(service: DomainService, user_id: int) -> SendingDomain:
        return await service.add(user_id, name, algorithm)

    domain = await _with_service(email, work)
    _echo_records(domain)


@domains_group.command("list")
@click.option("--user", "email", required=True)
@run_async
async def domains_list(email: str) -> None:
    """One line a domain: id, name, verified or not, the selector that signs."""

    async def work(service: DomainService, user_id: int) -> list[SendingDomain]:
        return await service.domains(user_id)

    for domain in await _with_service(email, work):
        signing = next((key.selector for key in domain.keys if key.state == "active"), "-")
        state = "verified" if domain.is_verified else "unverified"
        click.echo(f"{domain.id}\t{domain.name}\t{state}\t{signing}")


@domains_group.command("verify")
@click.option("--user", "email", required=True)
@click.argument("name")
@run_async
async def domains_verify(email: str, name: str) -> None:
    """Look the records up; prints each with what was found. Exits 1 while unverified."""

    async def work(service: DomainService, user_id: int) -> SendingDomain:
        domain = await _named(service, user_id, name)
        checked = await service.verify(user_id, domain.id)
        if checked is None:
            raise ValueError(f"the account has no domain {name}")
        return checked[0]

    domain = await _with_service(email, work)
    _echo_records(domain)
    if not domain.is_verified:
        raise click.ClickException(f"{domain.name} is not verified yet")


@domains_group.command("rotate")
@click.option("--user", "email", required=True)
@click.option("--algorithm", type=click.Choice(ALGORITHMS), help="Default: the active key's.")
@click.argument("name")
@run_async
async def domains_rotate(email: str, algorithm: str | None, name: str) -> None:
    """Make a new DKIM key; it signs once `verify` finds its record."""

    async def work(service: DomainService, user_id: int) -> SendingDomain | None:
        domain = await _named(service, user_id, name)
        return await service.rotate(user_id, domain.id, algorithm)

    domain = await _with_service(email, work)
    if domain is not None:
        _echo_records(domain)


@domains_group.command("remove-key")
@click.option("--user", "email", required=True)
@click.argument("name")
@click.argument("selector")
@run_async
async def domains_remove_key(email: str, name: str, selector: str) -> None:
    """Remove a pending or retired DKIM key."""

    async def work(service: DomainService, user_id: int) -> bool | None:
        domain = await _named(service, user_id, name)
        return await service.remove_key(user_id, domain.id, selector)

    if not await _with_service(email, work):
        raise click.ClickException(f"{name} has no DKIM key {selector}")


@domains_group.command("delete")
@click.option("--user", "email", required=True)
@click.argument("name")
@run_async
async def domains_delete(email: str, name: str) -> None:
    """Remove a domain and its keys."""

    async def work(service: DomainService, user_id: int) -> bool:
        domain = await _named(service, user_id, name)
        return await service.delete(user_id, domain.id)

    await _with_service(email, work)
