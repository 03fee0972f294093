"""Dashboard > Domains against a real DNS server: add a domain and see what to publish, check
it before and after publishing, rotate its key, remove a key and the domain. And the provider
form's fallbacks, and a direct provider on the providers page."""

from __future__ import annotations

import re

import pytest

from dns_fixtures import LocalDns
from mailpass.config import Settings


@pytest.fixture
def settings(settings: Settings, local_dns: LocalDns) -> Settings:
    return settings.model_copy(update={"dns_resolver": local_dns.address, "dns_timeout": 1.0})


def published(html: str) -> list[tuple[str, str]]:
    """(name, value) of each record the page asks to publish."""
    rows = re.findall(r"<td><code>([^<]+)</code></td>\s*<td><input [^>]*value=\"([^\"]+)\"", html)
    return [(name, value.replace("&#34;", '"')) for name, value in rows]


async def test_a_domain_is_added_checked_rotated_and_removed(signed_in, local_dns):
    browser, _ = await signed_in()
    refused = await browser.post("/dashboard/domains", {"name": "localhost"})
    assert refused.status_code == 400
    assert "not a usable domain" in refused.text

    added = await browser.post("/dashboard/domains", {"name": "shop.test", "algorithm": "rsa"})
    assert added.status_code == 303
    page = await browser.get(added.headers["location"])
    assert "Domain added" in page.text
    assert "not verified" in page.text
    records = published(page.text)
    assert [name for name, _ in records][:2] == [records[0][0], "shop.test"]
    assert records[0][0].endswith("._domainkey.shop.test")
    assert records[0][1].startswith("v=DKIM1; k=rsa; p=")

    checked = await browser.post("/dashboard/domains/verify", {"id": "1"})
    page = await browser.get(checked.headers["location"])
    assert "some required records are not there yet" in page.text
    assert "no TXT record at" in page.text

    for name, value in records[:2]:
        local_dns.add(name, "TXT", value)
    checked = await browser.post("/dashboard/domains/verify", {"id": "1"})
    page = await browser.get(checked.headers["location"])
    assert "the domain is verified" in page.text
    assert 'class="status-verified"' in page.text

    rotated = await browser.post("/dashboard/domains/rotate", {"id": "1"})
    page = await browser.get(rotated.headers["location"])
    assert "New DKIM key made" in page.text
    assert ", pending" in page.text
    again = await browser.post("/dashboard/domains/rotate", {"id": "1"})
    assert again.status_code == 400
    assert "rotation is under way" in again.text
    new_selector = re.search(r"<code>(mp\w+)</code> rsa, pending", page.text)
    assert new_selector is not None
    removed = await browser.post(
        "/dashboard/domains/remove-key", {"id": "1", "selector": new_selector.group(1)}
    )
    assert "DKIM key removed" in (await browser.get(removed.headers["location"])).text

    gone = await browser.post("/dashboard/domains/remove", {"id": "1"})
    page = await browser.get(gone.headers["location"])
    assert "Domain removed" in page.text
    assert "No sending domain yet" in page.text
    assert (await browser.post("/dashboard/domains/verify", {"id": "1"})).status_code == 404


async def test_another_accounts_domain_is_not_found(signed_in, app_client):
    owner, _ = await signed_in()
    await owner.post("/dashboard/domains", {"name": "shop.test"})
    other, _ = await signed_in("other@example.com")
    assert "shop.test" not in (await other.get("/dashboard/domains")).text
    for action in ("verify", "rotate", "remove"):
        answer = await other.post(f"/dashboard/domains/{action}", {"id": "1"})
        assert answer.status_code == 404, action


async def test_fallbacks_and_direct_providers_on_the_provider_pages(signed_in, smtp_sink):
    browser, account = await signed_in(sink=smtp_sink)
    form = {
        "kind": "smtp",
        "name": "backup",
        "host": "127.0.0.1",
        "port": str(smtp_sink.port),
        "security": "none",
        "fallbacks": "nobody",
    }
    refused = await browser.post("/dashboard/providers/new", form)
    assert refused.status_code == 400
    assert "no provider named nobody" in refused.text
    added = await browser.post("/dashboard/providers/new", {**form, "fallbacks": "primary"})
    assert added.status_code == 303
    direct = await browser.post(
        "/dashboard/providers/new", {"kind": "direct", "name": "own", "fallbacks": "backup"}
    )
    assert direct.status_code == 303
    page = await browser.get("/dashboard/providers")
    assert "falls back on primary" in page.text
    assert "falls back on backup" in page.text
    assert "each recipient domain's MX" in page.text
    edit = await browser.get(f"/dashboard/providers/{account.provider.id + 1}/edit")
    assert 'name="fallbacks" value="primary"' in edit.text
