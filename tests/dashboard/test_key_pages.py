"""Dashboard > API keys: created with chosen permissions and shown once, listed, revoked."""

from __future__ import annotations

import re

from mailpass.accounts.repository import list_keys

REQUEST = {"to": "user@example.com", "subject": "Hello", "text": "Hi"}
NEW_KEY = re.compile(r'id="new-key" class="key" value="(mp_(?:live|test)_[A-Za-z0-9_-]{32,})"')


async def test_a_new_key_is_shown_once_and_works_with_its_permissions(
    signed_in, smtp_sink, app_client
):
    browser, _ = await signed_in(sink=smtp_sink)
    created = await browser.post("/dashboard/keys", {"name": "web app", "permissions": ["mail"]})
    assert created.status_code == 200
    assert created.headers["cache-control"] == "no-store"
    key = NEW_KEY.search(created.text).group(1)
    assert key.startswith("mp_live_")
    assert 'data-copy-target="new-key"' in created.text

    listing = (await browser.get("/dashboard/keys")).text
    assert key not in listing  # never again
    row = listing[listing.index(f'data-key="{key[:12]}"') :].split("</tr>")[0]
    assert "web app" in row
    assert ">mail<" in row
    assert "never" in row
    assert "live" in row

    sent = await app_client.post(
        "/api/v1/mail/send", json=REQUEST, headers={"Authorization": f"Bearer {key}"}
    )
    assert sent.status_code == 200
    listing = (await browser.get("/dashboard/keys")).text
    row = listing[listing.index(f'data-key="{key[:12]}"') :].split("</tr>")[0]
    assert "never" not in row  # its last use is shown

    assert (
        await app_client.post(
            "/api/v1/mail/send-batch",
            json={"messages": [REQUEST]},
            headers={"Authorization": f"Bearer {key}"},
        )
    ).status_code == 200


async def test_a_key_without_mail_permission_is_refused_by_the_api(
    signed_in, smtp_sink, app_client
):
    browser, _ = await signed_in(sink=smtp_sink)
    created = await browser.post("/dashboard/keys", {"name": "mgmt", "permissions": ["keys"]})
    key = NEW_KEY.search(created.text).group(1)
    answer = await app_client.post(
        "/api/v1/mail/send", json=REQUEST, headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 403


async def test_test_keys_and_bad_choices(signed_in):
    browser, _ = await signed_in()
    created = await browser.post(
        "/dashboard/keys", {"name": "ci", "permissions": ["mail"], "test": "1"}
    )
    assert NEW_KEY.search(created.text).group(1).startswith("mp_test_")
    none = await browser.post("/dashboard/keys", {"name": "x"})
    assert none.status_code == 400
    assert "Choose at least one permission." in none.text
    unknown = await browser.post("/dashboard/keys", {"name": "x", "permissions": ["root"]})
    assert unknown.status_code == 400
    assert "unknown permission root" in unknown.text
    long_name = await browser.post("/dashboard/keys", {"name": "n" * 101, "permissions": ["mail"]})
    assert long_name.status_code == 400
    assert "1 to 100 characters" in long_name.text


async def test_revoking_a_key_makes_the_api_refuse_it(signed_in, smtp_sink, app_client):
    browser, account = await signed_in(sink=smtp_sink)
    listing = (await browser.get("/dashboard/keys")).text
    (key_id,) = re.findall(r"/dashboard/keys/(\d+)/revoke", listing)
    answer = await browser.post(f"/dashboard/keys/{key_id}/revoke")
    assert answer.status_code == 303
    listing = (await browser.get(answer.headers["location"])).text
    assert "API key revoked." in listing
    assert "revoked 20" in listing
    refused = await app_client.post("/api/v1/mail/send", json=REQUEST, headers=account.headers)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "UNAUTHORIZED"


async def test_another_accounts_key_can_be_neither_seen_nor_revoked(
    signed_in, smtp_sink, app_client, database
):
    _, alice = await signed_in("alice@example.com", sink=smtp_sink)
    mallory, _ = await signed_in("mallory@example.com")
    assert alice.key[:12] not in (await mallory.get("/dashboard/keys")).text
    async with database.read() as connection:
        (alices_key,) = await list_keys(connection, alice.user.id)
    answer = await mallory.post(f"/dashboard/keys/{alices_key.id}/revoke")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    still = await app_client.post("/api/v1/mail/send", json=REQUEST, headers=alice.headers)
    assert still.status_code == 200
