"""Dashboard > SMTP settings: add with presets, edit, test, default, delete, usage, isolation."""

from __future__ import annotations

import re

import sqlalchemy as sa

from mailpass.providers import repository as provider_queries
from mailpass.storage.tables import messages

SECRET = "s3cret-smtp-pass"  # the test server's password


def smtp_form(sink, **changes: str) -> dict[str, str]:
    form = {
        "kind": "smtp",
        "name": "relay",
        "host": "localhost",
        "port": str(sink.port),
        "security": "starttls",
        "username": "app",
        "password": SECRET,
        "from_email": "support@shop.example",
        "from_name": "Shop",
        "hourly_limit": "",
        "daily_limit": "",
    }
    form.update(changes)
    return form


async def stored_providers(database, user_id):
    async with database.read() as connection:
        return await provider_queries.list_providers(connection, user_id)


async def test_adding_an_smtp_provider_stores_it_with_an_encrypted_password(
    signed_in, make_smtp_sink, database
):
    sink = await make_smtp_sink(tls_mode="starttls", auth={"app": SECRET})
    browser, account = await signed_in()
    answer = await browser.post("/dashboard/providers/new", smtp_form(sink))
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/providers?notice=provider-added"

    (provider,) = await stored_providers(database, account.user.id)
    assert (provider.host, provider.port, provider.security) == ("localhost", sink.port, "starttls")
    assert provider.is_default  # the account's first provider
    assert provider.password_encrypted
    assert SECRET not in provider.password_encrypted

    listing = await browser.get(answer.headers["location"])
    assert "Provider added." in listing.text
    assert f"localhost:{sink.port}" in listing.text
    edit = await browser.get(f"/dashboard/providers/{provider.id}/edit")
    for page in (listing, edit):
        assert SECRET not in page.text  # secrets are write-only
    assert "One is stored now." in edit.text


async def test_presets_fill_in_the_managed_relays(signed_in, database):
    browser, account = await signed_in()
    base = {"from_email": "", "from_name": "", "hourly_limit": "", "daily_limit": ""}
    for form in (
        {
            "kind": "ses",
            "name": "ses",
            "region": "eu-west-1",
            "username": "AKIAEXAMPLE",
            "password": "x",
        },
        {"kind": "sendgrid", "name": "grid", "password": "SG.key"},
        {
            "kind": "mailgun",
            "name": "gun",
            "region": "eu",
            "username": "postmaster@mg.shop.example",
            "password": "x",
        },
    ):
        page = await browser.get(f"/dashboard/providers/new?kind={form['kind']}")
        assert page.status_code == 200
        answer = await browser.post("/dashboard/providers/new", {**base, **form})
        assert answer.status_code == 303, answer.text
    found = {p.name: p for p in await stored_providers(database, account.user.id)}
    assert (found["ses"].host, found["ses"].port) == ("email-smtp.eu-west-1.amazonaws.com", 587)
    assert (found["grid"].host, found["grid"].username) == ("smtp.sendgrid.net", "apikey")
    assert found["gun"].host == "smtp.eu.mailgun.org"
    assert all(p.security == "starttls" for p in found.values())

    edit = await browser.get(f"/dashboard/providers/{found['ses'].id}/edit")
    assert 'name="region" value="eu-west-1"' in edit.text


async def test_bad_fields_are_named_and_nothing_is_stored(signed_in, smtp_sink, database):
    browser, account = await signed_in()
    answer = await browser.post(
        "/dashboard/providers/new",
        smtp_form(smtp_sink, host="", port="seventy", hourly_limit="0"),
    )
    assert answer.status_code == 400
    assert re.search(r'id="host-error">is required', answer.text)
    assert re.search(r'id="port-error">must be a whole number from 1 to 65535', answer.text)
    assert re.search(r'id="hourly_limit-error">must be a whole number from 1', answer.text)
    assert SECRET not in answer.text  # not even echoed back into the form
    bad_sender = await browser.post(
        "/dashboard/providers/new", smtp_form(smtp_sink, from_email="not an address")
    )
    assert bad_sender.status_code == 400
    assert re.search(
        r'role="alert">&#39;not an address&#39; is not a valid e-mail address: ', bad_sender.text
    )
    bad_host = await browser.post(
        "/dashboard/providers/new", smtp_form(smtp_sink, host="smtp://mail.example.com")
    )
    assert bad_host.status_code == 400
    assert "is neither a host name nor an IP address" in bad_host.text
    assert await stored_providers(database, account.user.id) == []


async def test_test_connection_shows_the_servers_replies(signed_in, make_smtp_sink):
    sink = await make_smtp_sink(tls_mode="starttls", auth={"app": SECRET})
    browser, _ = await signed_in()
    await browser.post("/dashboard/providers/new", smtp_form(sink))
    (provider_id,) = re.findall(
        r"/dashboard/providers/(\d+)/test", (await browser.get("/dashboard/providers")).text
    )

    good = await browser.post(f"/dashboard/providers/{provider_id}/test")
    assert good.status_code == 200
    assert "Connected, secured and authenticated" in good.text
    assert "S: 220 sink.mailpass.test" in good.text
    assert "C: STARTTLS" in good.text
    assert "S: 235" in good.text
    assert SECRET not in good.text

    sink.auth = {"app": "rotated"}  # the server no longer takes the stored password
    bad = await browser.post(f"/dashboard/providers/{provider_id}/test")
    assert "Failed: authentication failed" in bad.text
    assert "535" in bad.text


async def test_editing_keeps_the_password_unless_a_new_one_is_given(
    signed_in, make_smtp_sink, database
):
    sink = await make_smtp_sink(tls_mode="starttls", auth={"app": SECRET})
    browser, account = await signed_in()
    await browser.post("/dashboard/providers/new", smtp_form(sink))
    (provider,) = await stored_providers(database, account.user.id)

    answer = await browser.post(
        f"/dashboard/providers/{provider.id}/edit",
        smtp_form(sink, name="relay 2", password="", hourly_limit="50"),
    )
    assert answer.status_code == 303
    (edited,) = await stored_providers(database, account.user.id)
    assert (edited.name, edited.hourly_limit) == ("relay 2", 50)
    assert edited.password_encrypted == provider.password_encrypted
    assert "S: 235" in (await browser.post(f"/dashboard/providers/{provider.id}/test")).text

    sink.auth = {"app": "new-pass"}
    await browser.post(
        f"/dashboard/providers/{provider.id}/edit", smtp_form(sink, password="new-pass")
    )
    assert "S: 235" in (await browser.post(f"/dashboard/providers/{provider.id}/test")).text


async def test_set_default_and_delete(signed_in, smtp_sink, database):
    browser, account = await signed_in(sink=smtp_sink)
    await browser.post("/dashboard/providers/new", smtp_form(smtp_sink, name="second"))
    first, second = await stored_providers(database, account.user.id)
    assert first.is_default
    assert not second.is_default

    answer = await browser.post(f"/dashboard/providers/{second.id}/default")
    assert answer.status_code == 303
    first, second = await stored_providers(database, account.user.id)
    assert second.is_default
    assert not first.is_default
    listing = (await browser.get("/dashboard/providers")).text
    row = listing[listing.index('data-provider="second"') :].split("</tr>")[0]
    assert "default</span>" in row

    # A queued message of the provider about to go: the page says it will fail.
    async with database.transaction() as connection:
        await connection.execute(
            messages.insert().values(
                user_id=account.user.id,
                provider_id=second.id,
                message_id="<q.1@shop.example>",
                from_email="a@shop.example",
                to_email="b@example.com",
                cc=[],
                bcc=[],
                subject="queued",
                tags=[],
                user_metadata={},
                status="queued",
                is_test=False,
                created_at=second.created_at,
                next_attempt_at=second.created_at,
            )
        )
    confirm = await browser.get(f"/dashboard/providers/{second.id}/delete")
    assert "1 message waiting to go out through it will fail" in confirm.text
    assert "It is the default provider" in confirm.text
    answer = await browser.post(f"/dashboard/providers/{second.id}/delete")
    assert answer.status_code == 303
    assert [p.name for p in await stored_providers(database, account.user.id)] == ["primary"]
    async with database.read() as connection:
        kept = (await connection.execute(sa.select(messages.c.provider_id))).scalar_one()
    assert kept is None
    assert "No default provider" in (await browser.get("/dashboard/providers")).text


async def test_usage_bars_count_the_limit_windows(signed_in, smtp_sink, app_client):
    browser, account = await signed_in(
        sink=smtp_sink, provider_options={"hourly_limit": 10, "daily_limit": 100}
    )
    for n in range(3):
        sent = await app_client.post(
            "/api/v1/mail/send",
            json={"to": "a@example.com", "subject": f"n{n}", "text": "x"},
            headers=account.headers,
        )
        assert sent.status_code == 200
    listing = (await browser.get("/dashboard/providers")).text
    assert "3 / 10 last hour" in listing
    assert "3 / 100 last 24 hours" in listing
    assert '<rect class="fill" width="30.0"' in listing  # the hourly bar, 30 % full


async def test_user_supplied_names_are_escaped(signed_in, smtp_sink):
    browser, _ = await signed_in()
    answer = await browser.post(
        "/dashboard/providers/new",
        smtp_form(smtp_sink, name="<script>alert(1)</script>", from_name='"><img src=x>'),
    )
    assert answer.status_code == 303
    listing = (await browser.get("/dashboard/providers")).text
    assert "<script>alert(1)</script>" not in listing
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in listing
    assert "<img src=x>" not in listing


async def test_another_accounts_provider_is_not_found(signed_in, smtp_sink, database):
    _, alice = await signed_in("alice@example.com", sink=smtp_sink)
    mallory, _ = await signed_in("mallory@example.com")
    provider_id = alice.provider.id
    for method, url in (
        ("get", f"/dashboard/providers/{provider_id}/edit"),
        ("post", f"/dashboard/providers/{provider_id}/edit"),
        ("post", f"/dashboard/providers/{provider_id}/test"),
        ("post", f"/dashboard/providers/{provider_id}/default"),
        ("get", f"/dashboard/providers/{provider_id}/delete"),
        ("post", f"/dashboard/providers/{provider_id}/delete"),
    ):
        answer = await getattr(mallory, method)(url)
        assert answer.status_code == 404, url
        assert answer.headers["content-type"].startswith("text/html")
    assert "primary" not in (await mallory.get("/dashboard/providers")).text
    assert len(await stored_providers(database, alice.user.id)) == 1


async def test_forms_without_the_sessions_csrf_token_change_nothing(signed_in, smtp_sink, database):
    browser, account = await signed_in()
    for token in ("", "not-the-token"):
        answer = await browser.post(
            "/dashboard/providers/new", {**smtp_form(smtp_sink), "csrf_token": token}
        )
        assert answer.status_code == 403
        assert "The form was refused" in answer.text
    cross_site = await browser.post(
        "/dashboard/providers/new", smtp_form(smtp_sink), headers={"Origin": "https://evil.example"}
    )
    assert cross_site.status_code == 403
    assert await stored_providers(database, account.user.id) == []


async def test_the_events_webhook_is_shown_and_its_key_set(signed_in, database, app_client):
    """The edit page of a managed relay shows the hook's URL and takes the key its payloads
    are checked with; a key that is not SendGrid's kind of key is refused, naming why."""
    import base64
    import json

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    browser, account = await signed_in()
    answer = await browser.post(
        "/dashboard/providers/new",
        {"kind": "sendgrid", "name": "grid", "password": "SG.key", "from_email": ""},
    )
    assert answer.status_code == 303, answer.text
    (provider,) = await stored_providers(database, account.user.id)
    edit = await browser.get(f"/dashboard/providers/{provider.id}/edit")
    url = f"http://127.0.0.1:8000/hooks/{provider.id}/sendgrid/{provider.hook_token}"
    assert f'value="{url}"' in edit.text
    assert "No key yet" in edit.text

    refused = await browser.post(
        f"/dashboard/providers/{provider.id}/webhook", {"hook_key": "not a key"}
    )
    assert refused.status_code == 400
    assert "verification key" in refused.text

    private_key = ec.generate_private_key(ec.SECP256R1())
    public = base64.b64encode(
        private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    saved = await browser.post(f"/dashboard/providers/{provider.id}/webhook", {"hook_key": public})
    assert saved.status_code == 303
    page = await browser.get(saved.headers["location"])
    assert "Webhook key saved" in page.text
    assert "A key is set." in page.text

    # The hook now takes SendGrid's signed payloads.
    body = json.dumps([]).encode()
    stamp = str(int(__import__("time").time()))
    signature = private_key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    posted = await app_client.post(
        url.removeprefix("http://127.0.0.1:8000"),
        content=body,
        headers={
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        },
    )
    assert posted.status_code == 200, posted.text

    removed = await browser.post(f"/dashboard/providers/{provider.id}/webhook", {"remove": "1"})
    assert removed.status_code == 303
    assert "Webhook key removed" in (await browser.get(removed.headers["location"])).text
