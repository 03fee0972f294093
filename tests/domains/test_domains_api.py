"""``/api/v1/domains`` on both databases, against a real DNS server on 127.0.0.1: a domain is
added with its DKIM key, verified once its records are served, its key rotated without a gap,
and every boundary holds (permission, another account's domain, bad input). The signatures of
the key that signs are checked with dkimpy, against the record the DNS serves."""

from __future__ import annotations

from typing import Any

import dkim
import pytest
import sqlalchemy as sa

from dns_fixtures import LocalDns
from mailpass.config import Settings
from mailpass.storage.tables import dkim_keys

DOMAINS = "/api/v1/domains"
MESSAGE = (
    b"From: Shop <news@shop.test>\r\nTo: someone@elsewhere.test\r\nSubject: Your order\r\n"
    b"Date: Tue, 08 Dec 2026 00:00:00 +0000\r\nMessage-ID: <1@shop.test>\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThank you.\r\n"
)


@pytest.fixture
def settings(settings: Settings, local_dns: LocalDns) -> Settings:
    return settings.model_copy(
        update={
            "dns_resolver": local_dns.address,
            "dns_timeout": 1.0,
            "direct_spf": "ip4:127.0.0.2",
        }
    )


def data(answer: Any, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()["data"] if status == 200 else answer.json()["error"]


def record(domain: dict[str, Any], purpose: str, selector: str | None = None) -> dict[str, Any]:
    return next(
        item
        for item in domain["records"]
        if item["purpose"] == purpose and (selector is None or item.get("selector") == selector)
    )


def publish(local_dns: LocalDns, domain: dict[str, Any], *purposes: str) -> None:
    for item in domain["records"]:
        if item["purpose"] in purposes and item["type"] == "TXT":
            local_dns.add(item["name"], "TXT", item["value"])


async def test_a_domain_is_added_verified_and_signs_what_dkimpy_verifies(
    app_client, make_account, services, local_dns, database
):
    account = await make_account()
    added = data(
        await app_client.post(DOMAINS, json={"name": "Shop.TEST"}, headers=account.headers)
    )
    assert added["name"] == "shop.test"
    assert added["verified"] is False
    [key] = added["dkim_keys"]
    assert key["state"] == "active"
    assert key["algorithm"] == "rsa"
    dkim_record = record(added, "dkim")
    assert dkim_record["name"] == f"{key['selector']}._domainkey.shop.test"
    assert dkim_record["value"].startswith("v=DKIM1; k=rsa; p=MII")
    assert record(added, "spf")["value"] == "v=spf1 ip4:127.0.0.2 ~all"
    assert record(added, "dmarc")["required"] is False
    assert "PRIVATE" not in str(added)
    async with database.read() as connection:
        stored = (await connection.execute(sa.select(dkim_keys.c.private_key_encrypted))).scalar()
    assert stored is not None
    assert "PRIVATE KEY" not in stored

    # Nothing published yet: each record says so, and nothing signs.
    checked = data(
        await app_client.post(f"{DOMAINS}/{added['id']}/verify", headers=account.headers)
    )
    assert checked["verified"] is False
    assert record(checked, "dkim")["status"] == "missing"
    assert record(checked, "spf")["status"] == "missing"
    assert await services.domains.signer(account.user.id, "shop.test") is None

    # A wrong key at the selector is a mismatch, said as such.
    local_dns.add(dkim_record["name"], "TXT", "v=DKIM1; k=rsa; p=AAAA")
    local_dns.add("shop.test", "TXT", "v=spf1 ip4:127.0.0.2 -all", "google-site-verification=x")
    checked = data(
        await app_client.post(f"{DOMAINS}/{added['id']}/verify", headers=account.headers)
    )
    assert checked["verified"] is False
    assert record(checked, "dkim")["status"] == "mismatch"
    assert "p= differs" in record(checked, "dkim")["note"]
    assert record(checked, "spf")["status"] == "verified"

    local_dns.replace(dkim_record["name"], "TXT", dkim_record["value"])
    checked = data(
        await app_client.post(f"{DOMAINS}/{added['id']}/verify", headers=account.headers)
    )
    assert checked["verified"] is True, checked["records"]
    assert record(checked, "dkim")["status"] == "verified"
    assert record(checked, "dmarc")["status"] == "missing"  # suggested, not required

    signer = await services.domains.signer(account.user.id, "shop.test")
    assert signer is not None
    assert signer.selector == key["selector"]
    signed = signer.sign(MESSAGE) + MESSAGE
    assert dkim.verify(signed, dnsfunc=local_dns.lookup_txt)
    assert not dkim.verify(
        signed.replace(b"Thank you.", b"Thank you!"), dnsfunc=local_dns.lookup_txt
    )

    # Listed, fetched, removed.
    listed = data(await app_client.get(DOMAINS, headers=account.headers))["domains"]
    assert [d["name"] for d in listed] == ["shop.test"]
    got = data(await app_client.get(f"{DOMAINS}/{added['id']}", headers=account.headers))
    assert got["verified_at"] == checked["verified_at"]
    gone = data(await app_client.delete(f"{DOMAINS}/{added['id']}", headers=account.headers))
    assert gone == {"id": added["id"], "deleted": True}
    assert await services.domains.signer(account.user.id, "shop.test") is None
    data(await app_client.get(f"{DOMAINS}/{added['id']}", headers=account.headers), 404)


async def test_an_ed25519_key_signs_as_rfc_8463_says(app_client, make_account, services, local_dns):
    account = await make_account()
    added = data(
        await app_client.post(
            DOMAINS,
            json={"name": "mail.shop.test", "algorithm": "ed25519"},
            headers=account.headers,
        )
    )
    assert record(added, "dkim")["value"].startswith("v=DKIM1; k=ed25519; p=")
    publish(local_dns, added, "dkim", "spf")
    checked = data(
        await app_client.post(f"{DOMAINS}/{added['id']}/verify", headers=account.headers)
    )
    assert checked["verified"] is True
    signer = await services.domains.signer(account.user.id, "mail.shop.test")
    assert signer is not None
    assert signer.algorithm == "ed25519"
    message = MESSAGE.replace(b"news@shop.test", b"news@mail.shop.test")
    assert dkim.verify(signer.sign(message) + message, dnsfunc=local_dns.lookup_txt)


async def test_a_rotation_keeps_signing_with_the_old_key_until_the_new_one_is_published(
    app_client, make_account, services, local_dns
):
    account = await make_account()
    added = data(
        await app_client.post(DOMAINS, json={"name": "shop.test"}, headers=account.headers)
    )
    domain_url = f"{DOMAINS}/{added['id']}"
    publish(local_dns, added, "dkim", "spf")
    data(await app_client.post(f"{domain_url}/verify", headers=account.headers))
    old = added["dkim_keys"][0]["selector"]

    rotated = data(
        await app_client.post(
            f"{domain_url}/rotate", json={"algorithm": "ed25519"}, headers=account.headers
        )
    )
    states = {key["selector"]: key["state"] for key in rotated["dkim_keys"]}
    [new] = [selector for selector, state in states.items() if state == "pending"]
    assert states[old] == "active"
    assert record(rotated, "dkim", new)["required"] is False  # not yet: it does not sign
    again = await app_client.post(f"{domain_url}/rotate", headers=account.headers)
    assert "rotation is under way" in data(again, 400)["message"]

    # Not published yet: a check changes nothing, and the old key goes on signing.
    checked = data(await app_client.post(f"{domain_url}/verify", headers=account.headers))
    assert checked["verified"] is True
    signer = await services.domains.signer(account.user.id, "shop.test")
    assert signer is not None
    assert signer.selector == old

    publish(local_dns, {"records": [record(rotated, "dkim", new)]}, "dkim")
    checked = data(await app_client.post(f"{domain_url}/verify", headers=account.headers))
    states = {key["selector"]: key["state"] for key in checked["dkim_keys"]}
    assert states == {old: "retired", new: "active"}
    assert checked["verified"] is True
    signer = await services.domains.signer(account.user.id, "shop.test")
    assert signer is not None
    assert signer.selector == new
    assert signer.algorithm == "ed25519"
    # The retired key's record is still listed: mail signed with it may be in transit.
    assert record(checked, "dkim", old)["value"] == record(added, "dkim")["value"]

    refused = await app_client.delete(f"{domain_url}/keys/{new}", headers=account.headers)
    assert "is the key mail is signed with" in data(refused, 400)["message"]
    removed = data(await app_client.delete(f"{domain_url}/keys/{old}", headers=account.headers))
    assert [key["selector"] for key in removed["dkim_keys"]] == [new]
    data(await app_client.delete(f"{domain_url}/keys/{old}", headers=account.headers), 404)


async def test_a_dns_that_does_not_answer_leaves_a_verified_domain_verified(
    app_client, make_account, local_dns
):
    account = await make_account()
    added = data(
        await app_client.post(DOMAINS, json={"name": "shop.test"}, headers=account.headers)
    )
    publish(local_dns, added, "dkim", "spf")
    url = f"{DOMAINS}/{added['id']}/verify"
    assert data(await app_client.post(url, headers=account.headers))["verified"] is True

    local_dns.silent.add(record(added, "dkim")["name"])
    checked = data(await app_client.post(url, headers=account.headers))
    assert record(checked, "dkim")["status"] == "unavailable"
    assert checked["verified"] is True  # nothing was learnt

    local_dns.silent.clear()
    local_dns.remove(record(added, "dkim")["name"], "TXT")
    checked = data(await app_client.post(url, headers=account.headers))
    assert checked["verified"] is False  # the record is gone: so is the verification


async def test_bad_requests_and_other_accounts(app_client, make_account):
    account = await make_account()
    other = await make_account("other@example.com")
    for body, problem in [
        ({"name": "localhost"}, "not a usable domain"),
        ({"name": "shop.invalid"}, "special-use"),
        ({"name": "user@shop.test"}, "not a domain name"),
        ({"name": "shop.test", "algorithm": "dsa"}, "algorithm"),
        ({"name": "shop.test", "selector": "x"}, "selector"),
    ]:
        error = data(await app_client.post(DOMAINS, json=body, headers=account.headers), 400)
        assert error["code"] == "VALIDATION_ERROR"
        assert problem in str(error), error
    added = data(
        await app_client.post(DOMAINS, json={"name": "shop.test"}, headers=account.headers)
    )
    duplicate = await app_client.post(DOMAINS, json={"name": "SHOP.test."}, headers=account.headers)
    assert "already added" in data(duplicate, 400)["message"]
    # Another account may add the same name (its own DNS proof decides), but never sees ours.
    data(await app_client.post(DOMAINS, json={"name": "shop.test"}, headers=other.headers))
    for method, path in [
        ("GET", f"{DOMAINS}/{added['id']}"),
        ("POST", f"{DOMAINS}/{added['id']}/verify"),
        ("POST", f"{DOMAINS}/{added['id']}/rotate"),
        ("DELETE", f"{DOMAINS}/{added['id']}/keys/x"),
        ("DELETE", f"{DOMAINS}/{added['id']}"),
        ("GET", f"{DOMAINS}/abc"),
        ("GET", f"{DOMAINS}/99999999999"),
    ]:
        answer = await app_client.request(method, path, headers=other.headers)
        assert data(answer, 404)["code"] == "NOT_FOUND", (method, path)


async def test_the_domains_permission_is_needed(app_client, make_account):
    account = await make_account(permissions=["mail", "providers"])
    answer = await app_client.get(DOMAINS, headers=account.headers)
    assert data(answer, 403)["code"] == "FORBIDDEN"
    answer = await app_client.get(DOMAINS)
    assert answer.status_code == 401


async def test_the_return_path_record_is_listed_with_a_bounce_domain(
    app_client, make_account, local_dns
):
    app_client.app.state.services.settings.bounce_domain = "bounces.shop.test"
    account = await make_account()
    added = data(
        await app_client.post(DOMAINS, json={"name": "shop.test"}, headers=account.headers)
    )
    bounce = record(added, "return_path")
    assert bounce["type"] == "MX"
    assert bounce["name"] == "bounces.shop.test"
    assert bounce["required"] is False
    local_dns.add("bounces.shop.test", "MX", "10 mail.shop.test.")
    checked = data(
        await app_client.post(f"{DOMAINS}/{added['id']}/verify", headers=account.headers)
    )
    assert record(checked, "return_path")["status"] == "verified"
    assert record(checked, "return_path")["found"] == ["10 mail.shop.test"]
