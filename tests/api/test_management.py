"""The management API (``/api/v1/providers``, ``/api/v1/keys``, the webhook endpoints' test and
enable actions) on both databases, against a real SMTP server: what each route does, what it
never tells (passwords, keys after their creation), and every permission boundary: 403 without
the permission, 404 for another account's provider, key or endpoint."""

from __future__ import annotations

from typing import Any

import pytest

from mailpass.accounts.keys import ALL_PERMISSIONS
from mailpass.config import Settings

PROVIDERS = "/api/v1/providers"
KEYS = "/api/v1/keys"
WEBHOOKS = "/api/v1/webhooks"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhooks_allow_private": True})


def data(answer: Any, status: int = 200) -> Any:
    assert answer.status_code == status, answer.text
    return answer.json()["data"] if status == 200 else answer.json()["error"]


def smtp_fields(sink: Any, **more: Any) -> dict[str, Any]:
    return {
        "name": "relay",
        "kind": "smtp",
        "host": "127.0.0.1",
        "port": sink.port,
        "security": "none",
        "from_email": "news@shop.example",
        **more,
    }


async def test_a_provider_is_added_tested_made_default_and_used(
    app_client, make_account, make_smtp_sink, smtp_sink
):
    account = await make_account(sink=smtp_sink)
    other_sink = await make_smtp_sink(auth={"relay-user": "s3cret"})
    created = data(
        await app_client.post(
            PROVIDERS,
            json=smtp_fields(other_sink, username="relay-user", password="s3cret", daily_limit=5),
            headers=account.headers,
        )
    )
    assert created["name"] == "relay"
    assert created["password_set"] is True
    assert created["default"] is False
    assert created["daily_limit"] == 5
    assert created["webhook_url"] is None  # a plain SMTP server posts no events
    assert "s3cret" not in str(created)
    assert "password" not in created

    listed = data(await app_client.get(PROVIDERS, headers=account.headers))["providers"]
    assert [p["name"] for p in listed] == ["primary", "relay"]
    assert [p["default"] for p in listed] == [True, False]
    assert "s3cret" not in str(listed)

    tested = data(
        await app_client.post(f"{PROVIDERS}/{created['id']}/test", headers=account.headers)
    )
    assert tested["ok"] is True, tested
    assert any(line.startswith("S: 235") for line in tested["transcript"]), tested
    assert "s3cret" not in str(tested)

    default = data(
        await app_client.post(f"{PROVIDERS}/{created['id']}/default", headers=account.headers)
    )
    assert default["default"] is True
    sent = data(
        await app_client.post(
            "/api/v1/mail/send",
            json={"to": "user@example.com", "subject": "Hi", "text": "Hi"},
            headers=account.headers,
        )
    )
    assert sent["from"] == "news@shop.example"
    assert [m.rcpt_tos for m in other_sink.messages] == [["user@example.com"]]
    assert smtp_sink.messages == []
    listed = data(await app_client.get(PROVIDERS, headers=account.headers))["providers"]
    assert [p["default"] for p in listed] == [False, True]


async def test_a_provider_that_fails_its_test_says_why(app_client, make_account, make_smtp_sink):
    account = await make_account()
    sink = await make_smtp_sink(auth={"relay-user": "right"})
    created = data(
        await app_client.post(
            PROVIDERS,
            json=smtp_fields(sink, username="relay-user", password="wrong"),
            headers=account.headers,
        )
    )
    tested = data(
        await app_client.post(f"{PROVIDERS}/{created['id']}/test", headers=account.headers)
    )
    assert tested["ok"] is False
    assert "535" in tested["error"], tested
    assert "wrong" not in str(tested)


async def test_a_patch_changes_what_it_names_and_keeps_the_rest(
    app_client, make_account, make_smtp_sink
):
    account = await make_account()
    sink = await make_smtp_sink(auth={"u": "p1"})
    created = data(
        await app_client.post(
            PROVIDERS,
            json=smtp_fields(sink, username="u", password="p1", hourly_limit=10),
            headers=account.headers,
        )
    )
    url = f"{PROVIDERS}/{created['id']}"
    changed = data(
        await app_client.patch(
            url,
            json={"name": "renamed", "hourly_limit": None, "track_clicks": True},
            headers=account.headers,
        )
    )
    assert changed["name"] == "renamed"
    assert changed["hourly_limit"] is None
    assert changed["track_clicks"] is True
    assert (changed["host"], changed["port"], changed["username"]) == ("127.0.0.1", sink.port, "u")
    assert changed["password_set"] is True  # kept: not given
    assert data(await app_client.post(f"{url}/test", headers=account.headers))["ok"] is True

    # A new password replaces the old one; null removes it.
    data(await app_client.patch(url, json={"password": "p2"}, headers=account.headers))
    assert data(await app_client.post(f"{url}/test", headers=account.headers))["ok"] is False
    removed = data(await app_client.patch(url, json={"password": None}, headers=account.headers))
    assert removed["password_set"] is False
    assert data(await app_client.get(url, headers=account.headers)) == removed


async def test_managed_kinds_fill_in_their_server_and_webhook(app_client, make_account):
    account = await make_account()
    ses = data(
        await app_client.post(
            PROVIDERS,
            json={"name": "ses", "kind": "ses", "region": "eu-west-1", "username": "AKIA"},
            headers=account.headers,
        )
    )
    assert (ses["host"], ses["port"], ses["security"], ses["region"]) == (
        "email-smtp.eu-west-1.amazonaws.com",
        587,
        "starttls",
        "eu-west-1",
    )
    assert ses["webhook_url"].endswith(f"/hooks/{ses['id']}/ses/" + ses["webhook_url"][-32:])
    moved = data(
        await app_client.patch(
            f"{PROVIDERS}/{ses['id']}", json={"region": "us-east-2"}, headers=account.headers
        )
    )
    assert moved["host"] == "email-smtp.us-east-2.amazonaws.com"

    mailgun = data(
        await app_client.post(
            PROVIDERS,
            json={"name": "mg", "kind": "mailgun", "region": "eu", "webhook_key": "key-abc123"},
            headers=account.headers,
        )
    )
    assert mailgun["host"] == "smtp.eu.mailgun.org"
    assert mailgun["webhook_key_set"] is True
    assert "key-abc123" not in str(mailgun)
    cleared = data(
        await app_client.patch(
            f"{PROVIDERS}/{mailgun['id']}", json={"webhook_key": None}, headers=account.headers
        )
    )
    assert cleared["webhook_key_set"] is False


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"name": "x", "kind": "smtp"}, "needs a host"),
        ({"name": "x", "kind": "smtp", "host": "bad host"}, "neither a host name"),
        ({"name": "x", "kind": "ses"}, "needs a region"),
        ({"name": "x", "kind": "ses", "region": "mars-1"}, "not an AWS region"),
        ({"name": "x", "kind": "mailgun", "region": "asia"}, "us or eu"),
        ({"name": "x", "kind": "ses", "region": "us-east-1", "webhook_key": "k"}, "needs no"),
        ({"name": "x", "kind": "sendgrid", "webhook_key": "not-a-key"}, "SendGrid"),
        ({"name": "x", "kind": "smtp", "host": "h", "from_email": "nope"}, "nope"),
        ({"name": "a\x00b", "kind": "smtp", "host": "h"}, "control characters"),
        ({"name": "x", "kind": "smtp", "host": "h", "password": "p\r\nQUIT"}, "control"),
    ],
)
async def test_a_provider_that_cannot_work_is_refused_and_not_stored(
    app_client, make_account, fields, says
):
    account = await make_account()
    error = data(await app_client.post(PROVIDERS, json=fields, headers=account.headers), 400)
    assert error["code"] == "VALIDATION_ERROR"
    assert says in str(error["details"]), error
    assert data(await app_client.get(PROVIDERS, headers=account.headers)) == {"providers": []}


async def test_unknown_fields_a_kind_change_and_a_taken_name_are_refused(
    app_client, make_account, smtp_sink
):
    account = await make_account(sink=smtp_sink)
    error = data(
        await app_client.post(
            PROVIDERS, json=smtp_fields(smtp_sink, pasword="x"), headers=account.headers
        ),
        400,
    )
    assert error["details"] == [{"field": "pasword", "message": "Extra inputs are not permitted"}]
    error = data(
        await app_client.post(
            PROVIDERS, json=smtp_fields(smtp_sink, name="primary"), headers=account.headers
        ),
        400,
    )
    assert "already has a provider named 'primary'" in str(error["details"])
    url = f"{PROVIDERS}/{account.provider.id}"
    error = data(await app_client.patch(url, json={"kind": "ses"}, headers=account.headers), 400)
    assert "kind cannot change" in str(error["details"])
    unchanged = data(await app_client.get(url, headers=account.headers))
    assert unchanged["kind"] == "smtp"


async def test_deleting_a_provider(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    url = f"{PROVIDERS}/{account.provider.id}"
    assert data(await app_client.delete(url, headers=account.headers)) == {
        "id": account.provider.id,
        "deleted": True,
    }
    assert data(await app_client.get(url, headers=account.headers), 404)["code"] == "NOT_FOUND"
    refused = await app_client.post(
        "/api/v1/mail/send",
        json={"to": "user@example.com", "subject": "Hi", "text": "Hi"},
        headers=account.headers,
    )
    assert data(refused, 422)["code"] == "NO_SMTP_PROVIDER"


async def test_keys_grant_no_more_than_their_maker_holds(app_client, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink, permissions=["keys", "mail"])
    made = data(
        await app_client.post(
            KEYS, json={"name": "deploy", "permissions": ["mail"]}, headers=account.headers
        )
    )
    assert made["permissions"] == ["mail"]
    assert made["test"] is False
    assert made["key"].startswith("mp_live_")
    assert made["prefix"] == made["key"][:12]
    made_headers = {"Authorization": f"Bearer {made['key']}"}
    sent = await app_client.post(
        "/api/v1/mail/send",
        json={"to": "user@example.com", "subject": "Hi", "text": "Hi"},
        headers=made_headers,
    )
    assert sent.status_code == 200, sent.text

    # Without permissions, a key gets its maker's.
    same = data(await app_client.post(KEYS, json={"name": "same"}, headers=account.headers))
    assert same["permissions"] == ["mail", "keys"]
    beyond = await app_client.post(
        KEYS, json={"permissions": ["mail", "providers", "webhooks"]}, headers=account.headers
    )
    error = data(beyond, 403)
    assert error["code"] == "FORBIDDEN"
    assert "lacks providers, webhooks" in error["message"]
    unknown = data(
        await app_client.post(KEYS, json={"permissions": ["admin"]}, headers=account.headers), 400
    )
    assert "admin is not one of" in str(unknown["details"])
    empty = data(
        await app_client.post(KEYS, json={"permissions": []}, headers=account.headers), 400
    )
    assert "at least one permission" in str(empty["details"])

    listed = data(await app_client.get(KEYS, headers=account.headers))["keys"]
    assert [k["name"] for k in listed] == ["default", "deploy", "same"]
    assert made["key"] not in str(listed)
    assert "key" not in listed[1]

    # Revoked, it is refused from then on; a key cannot revoke itself.
    revoked = data(await app_client.delete(f"{KEYS}/{made['id']}", headers=account.headers))
    assert revoked["revoked_at"] is not None
    refused = await app_client.post(
        "/api/v1/mail/send",
        json={"to": "user@example.com", "subject": "Hi", "text": "Hi"},
        headers=made_headers,
    )
    assert data(refused, 401)["code"] == "UNAUTHORIZED"
    again = await app_client.delete(f"{KEYS}/{made['id']}", headers=account.headers)
    assert data(again, 404)["code"] == "NOT_FOUND"
    own_id = listed[0]["id"]
    itself = await app_client.delete(f"{KEYS}/{own_id}", headers=account.headers)
    assert "cannot revoke itself" in data(itself, 403)["message"]


async def test_a_test_key_makes_only_test_keys(app_client, make_account):
    account = await make_account(test_key=True)
    made = data(await app_client.post(KEYS, json={"name": "t"}, headers=account.headers))
    assert made["test"] is True
    assert made["key"].startswith("mp_test_")
    live = await app_client.post(KEYS, json={"test": False}, headers=account.headers)
    assert "only test keys" in data(live, 403)["message"]


async def test_webhook_endpoints_take_a_test_event_and_are_enabled_again(app_client, make_account):
    account = await make_account()
    endpoint = data(
        await app_client.post(
            WEBHOOKS, json={"url": "http://127.0.0.1:9/hook"}, headers=account.headers
        )
    )
    url = f"{WEBHOOKS}/{endpoint['id']}"
    assert data(await app_client.post(f"{url}/test", headers=account.headers)) == {
        "id": endpoint["id"],
        "queued": True,
    }
    deliveries = data(await app_client.get(f"{url}/deliveries", headers=account.headers))
    assert [(d["event_type"], d["state"]) for d in deliveries["deliveries"]] == [
        ("test", "pending")
    ]
    enabled = data(await app_client.post(f"{url}/enable", headers=account.headers))
    assert enabled["enabled"] is True
    assert enabled["id"] == endpoint["id"]


# Every route of the management API, with what it needs to get past authorisation.
ROUTES = [
    ("GET", PROVIDERS, "providers", None),
    ("POST", PROVIDERS, "providers", {"name": "n", "kind": "smtp", "host": "h"}),
    ("GET", PROVIDERS + "/{provider}", "providers", None),
    ("PATCH", PROVIDERS + "/{provider}", "providers", {"name": "n2"}),
    ("POST", PROVIDERS + "/{provider}/default", "providers", None),
    ("POST", PROVIDERS + "/{provider}/test", "providers", None),
    ("DELETE", PROVIDERS + "/{provider}", "providers", None),
    ("GET", KEYS, "keys", None),
    ("POST", KEYS, "keys", {"name": "k", "permissions": ["mail"]}),
    ("DELETE", KEYS + "/{key}", "keys", None),
    ("POST", WEBHOOKS + "/{endpoint}/test", "webhooks", None),
    ("POST", WEBHOOKS + "/{endpoint}/enable", "webhooks", None),
    ("GET", WEBHOOKS + "/{endpoint}/deliveries", "webhooks", None),
    ("DELETE", WEBHOOKS + "/{endpoint}", "webhooks", None),
]


async def test_every_route_needs_its_permission_and_sees_only_its_account(
    app_client, make_account, smtp_sink
):
    owner = await make_account("owner@example.com", sink=smtp_sink)
    endpoint = data(
        await app_client.post(
            WEBHOOKS, json={"url": "http://127.0.0.1:9/hook"}, headers=owner.headers
        )
    )
    owner_keys = data(await app_client.get(KEYS, headers=owner.headers))["keys"]
    ids = {
        "provider": owner.provider.id,
        "key": owner_keys[0]["id"],
        "endpoint": endpoint["id"],
    }
    stranger = await make_account("stranger@example.com", sink=smtp_sink)
    for method, template, permission, body in ROUTES:
        path = template.format(**ids)
        # A key of the owner's own account without the permission: 403.
        lacking = await make_account(
            f"{permission}-{method}-{len(path)}@example.com",
            permissions=[p for p in ALL_PERMISSIONS if p != permission],
        )
        answer = await app_client.request(method, path, json=body, headers=lacking.headers)
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.json()["error"]["code"] == "FORBIDDEN"
        assert f"`{permission}`" in answer.json()["error"]["message"]
        # Another account's provider, key or endpoint: as unknown as a missing one.
        if "{" in template:
            answer = await app_client.request(method, path, json=body, headers=stranger.headers)
            assert answer.status_code == 404, (method, path, answer.text)
            assert answer.json()["error"]["code"] == "NOT_FOUND"
        # No key at all: 401.
        answer = await app_client.request(method, path, json=body)
        assert answer.status_code == 401, (method, path, answer.text)

    # Nothing of the owner's changed.
    providers = data(await app_client.get(PROVIDERS, headers=owner.headers))["providers"]
    assert [(p["name"], p["default"]) for p in providers] == [("primary", True)]
    keys = data(await app_client.get(KEYS, headers=owner.headers))["keys"]
    assert [(k["id"], k["revoked_at"]) for k in keys] == [(ids["key"], None)]
    webhooks = data(await app_client.get(WEBHOOKS, headers=owner.headers))["webhooks"]
    assert [w["id"] for w in webhooks] == [endpoint["id"]]


@pytest.mark.parametrize("raw", ["abc", "0", "-1", "99999999999999999999", "1.5", "\u0661"])
async def test_ids_no_row_can_have_are_not_found(app_client, make_account, raw):
    account = await make_account()
    for path in (f"{PROVIDERS}/{raw}", f"{KEYS}/{raw}", f"{WEBHOOKS}/{raw}/deliveries"):
        method = "DELETE" if path.startswith(KEYS) else "GET"
        answer = await app_client.request(method, path, headers=account.headers)
        assert answer.status_code == 404, (path, answer.text)
        assert answer.json()["error"]["code"] == "NOT_FOUND"
