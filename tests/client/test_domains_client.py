"""``client.domains``, blocking and async, against a real running server and a real DNS
server: a domain added, verified once its records are served, its key rotated and removed."""

from __future__ import annotations

import pytest

from dns_fixtures import LocalDns
from mailpass import AsyncClient, Client, ForbiddenError, NotFoundError, ValidationError
from mailpass.config import Settings


@pytest.fixture
def settings(settings: Settings, local_dns: LocalDns) -> Settings:
    return settings.model_copy(update={"dns_resolver": local_dns.address, "dns_timeout": 1.0})


async def test_domains_from_the_blocking_client(live_server, make_account, local_dns):
    account = await make_account()
    with Client(account.key, base_url=live_server.base_url, max_retries=0) as client:
        domain = client.domains.create("Shop.test", algorithm="ed25519")
        assert (domain.name, domain.verified) == ("shop.test", False)
        [key] = domain.dkim_keys
        assert (key.algorithm, key.state) == ("ed25519", "active")
        assert [r.purpose for r in domain.records] == ["dkim", "spf", "dmarc"]
        for record in domain.records[:2]:
            local_dns.add(record.name, record.type, record.value)
        checked = client.domains.verify(domain.id)
        assert checked.verified is True
        assert checked.records[0].status == "verified"
        assert [d.id for d in client.domains.list()] == [domain.id]

        rotated = client.domains.rotate(domain.id)
        pending = next(k for k in rotated.dkim_keys if k.state == "pending")
        assert pending.algorithm == "ed25519"  # the active key's, by default
        with pytest.raises(ValidationError):
            client.domains.delete_key(domain.id, key.selector)  # it signs
        left = client.domains.delete_key(domain.id, pending.selector)
        assert [k.selector for k in left.dkim_keys] == [key.selector]
        client.domains.delete(domain.id)
        with pytest.raises(NotFoundError):
            client.domains.get(domain.id)


async def test_domains_from_the_async_client(live_server, make_account):
    account = await make_account()
    async with AsyncClient(account.key, base_url=live_server.base_url, max_retries=0) as client:
        domain = await client.domains.create("mail.shop.test")
        assert domain.dkim_keys[0].algorithm == "rsa"
        assert (await client.domains.get(domain.id)).name == "mail.shop.test"
        assert (await client.domains.verify(domain.id)).records[0].status == "missing"
    mail_only = await make_account("other@example.com", permissions=["mail"])
    async with AsyncClient(mail_only.key, base_url=live_server.base_url) as client:
        with pytest.raises(ForbiddenError):
            await client.domains.list()
