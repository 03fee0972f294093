"""Signing in and out: argon2 passwords, the session cookie, CSRF, the lockout."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from dashboard.conftest import PASSWORD, csrf_of
from mailpass.accounts import service as accounts
from mailpass.api.app import create_app
from mailpass.dashboard.signin import MAX_FAILURES_PER_ACCOUNT
from mailpass.storage.tables import users


async def test_pages_send_a_signed_out_browser_to_sign_in_and_back(
    browsers, make_account, database
):
    await make_account("owner@example.com")
    await accounts.set_password(database, "owner@example.com", PASSWORD)
    browser = browsers()

    page = await browser.get("/dashboard/messages?status=sent")
    assert page.status_code == 303
    assert page.headers["location"] == "/dashboard/sign-in?next=/dashboard/messages%3Fstatus%3Dsent"

    form = await browser.get(page.headers["location"])
    assert 'name="next" value="/dashboard/messages?status=sent"' in form.text
    answer = await browser.client.post(
        "/dashboard/sign-in",
        data={
            "csrf_token": csrf_of(form.text),
            "email": "Owner@Example.com",
            "password": PASSWORD,
            "next": "/dashboard/messages?status=sent",
        },
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/dashboard/messages?status=sent"
    assert "owner@example.com" in (await browser.get("/dashboard/messages?status=sent")).text


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/api/v1/mail"])
async def test_sign_in_never_redirects_away_from_the_dashboard(signed_in, browsers, target):
    await signed_in("owner@example.com")
    browser = browsers()
    form = await browser.get("/dashboard/sign-in")
    answer = await browser.client.post(
        "/dashboard/sign-in",
        data={
            "csrf_token": csrf_of(form.text),
            "email": "owner@example.com",
            "password": PASSWORD,
            "next": target,
        },
    )
    assert answer.headers["location"] == "/dashboard/"


async def test_session_cookie_is_signed_http_only_and_same_site(signed_in, browsers):
    await signed_in("owner@example.com")
    browser = browsers()
    form = await browser.get("/dashboard/sign-in")
    answer = await browser.client.post(
        "/dashboard/sign-in",
        data={"csrf_token": csrf_of(form.text), "email": "owner@example.com", "password": PASSWORD},
    )
    cookie = next(
        value for value in answer.headers.get_list("set-cookie") if "mailpass_session=" in value
    )
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/dashboard" in attributes
    assert "secure" not in attributes  # the instance is on http://: a Secure cookie never returns

    # A cookie whose signature does not match is no session at all.
    value = cookie.split(";")[0].split("=", 1)[1]
    forged = browsers()
    forged.client.cookies.set("mailpass_session", value[:-2] + "xx", path="/dashboard")
    assert (await forged.get("/dashboard/")).status_code == 303
    genuine = browsers()
    genuine.client.cookies.set("mailpass_session", value, path="/dashboard")
    assert (await genuine.get("/dashboard/")).status_code == 200


async def test_cookie_is_secure_when_the_public_url_is_https(settings, make_account, database):
    await make_account("owner@example.com")
    await accounts.set_password(database, "owner@example.com", PASSWORD)
    app = create_app(settings.model_copy(update={"public_url": "https://mail.example.com"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://mail.example.com") as c:
            form = await c.get("/dashboard/sign-in")
            answer = await c.post(
                "/dashboard/sign-in",
                data={
                    "csrf_token": csrf_of(form.text),
                    "email": "owner@example.com",
                    "password": PASSWORD,
                },
            )
    cookie = next(v for v in answer.headers.get_list("set-cookie") if "mailpass_session=" in v)
    assert "secure" in [part.strip().lower() for part in cookie.split(";")]


@pytest.mark.parametrize(
    ("email", "password"),
    [("owner@example.com", "wrong password!"), ("nobody@example.com", PASSWORD)],
)
async def test_wrong_password_and_unknown_account_get_the_same_answer(
    signed_in, browsers, email, password
):
    await signed_in("owner@example.com")
    answer = await browsers().sign_in(email, password)
    assert answer.status_code == 401
    assert "Wrong e-mail or password." in answer.text
    assert "mailpass_session" not in answer.headers.get("set-cookie", "")


async def test_an_account_without_a_password_cannot_sign_in(make_account, browsers):
    await make_account("nopass@example.com")  # created by the CLI without --password-stdin
    answer = await browsers().sign_in("nopass@example.com", "")
    assert answer.status_code == 400
    answer = await browsers().sign_in("nopass@example.com", "anything at all")
    assert answer.status_code == 401


async def test_repeated_failures_lock_the_account_even_for_the_right_password(signed_in, browsers):
    await signed_in("owner@example.com")
    await signed_in("other@example.com")
    attacker = browsers()
    for _ in range(MAX_FAILURES_PER_ACCOUNT):
        assert (await attacker.sign_in("owner@example.com", "guess guess")).status_code == 401

    locked = await browsers().sign_in("owner@example.com", PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed sign-ins; try again in 15 minutes." in locked.text
    assert 800 < int(locked.headers["retry-after"]) <= 900
    # Another account is not locked by it.
    assert (await browsers().sign_in("other@example.com")).status_code == 303


async def test_a_successful_sign_in_forgets_earlier_failures(signed_in, browsers):
    await signed_in("owner@example.com")
    for _ in range(2):
        clumsy = browsers()
        for _ in range(MAX_FAILURES_PER_ACCOUNT - 1):
            assert (await clumsy.sign_in("owner@example.com", "guess guess")).status_code == 401
        assert (await clumsy.sign_in("owner@example.com")).status_code == 303


async def test_sign_in_without_its_csrf_token_is_refused(signed_in, browsers):
    await signed_in("owner@example.com")
    browser = browsers()
    await browser.get("/dashboard/sign-in")
    answer = await browser.client.post(
        "/dashboard/sign-in",
        data={"csrf_token": "made-up", "email": "owner@example.com", "password": PASSWORD},
    )
    assert answer.status_code == 403
    assert "mailpass_session" not in answer.headers.get("set-cookie", "")


async def test_sign_out_ends_the_session_for_good(signed_in, browsers):
    browser, _ = await signed_in("owner@example.com")
    stolen = browser.client.cookies.get("mailpass_session")
    answer = await browser.post("/dashboard/sign-out")
    assert answer.status_code == 303
    assert (await browser.get("/dashboard/")).status_code == 303

    replay = browsers()
    replay.client.cookies.set("mailpass_session", stolen, path="/dashboard")
    assert (await replay.get("/dashboard/")).status_code == 303


async def test_sign_out_needs_the_csrf_token(signed_in):
    browser, _ = await signed_in("owner@example.com")
    answer = await browser.post("/dashboard/sign-out", {"csrf_token": "wrong"})
    assert answer.status_code == 403
    assert (await browser.get("/dashboard/")).status_code == 200


async def test_a_new_password_ends_existing_sessions(signed_in, database):
    browser, _ = await signed_in("owner@example.com")
    await accounts.set_password(database, "owner@example.com", "a brand new password")
    assert (await browser.get("/dashboard/")).status_code == 303
    assert (await browser.sign_in("owner@example.com", "a brand new password")).status_code == 303


async def test_passwords_are_stored_as_argon2_hashes(signed_in, database):
    await signed_in("owner@example.com")
    async with database.read() as connection:
        stored = (await connection.execute(sa.select(users.c.password_hash))).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


async def test_users_created_on_the_command_line_can_sign_in(mailpass, browsers):
    created = await mailpass(
        "users", "create", "cli@example.com", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert created.code == 0, created.err
    assert (await browsers().sign_in("cli@example.com")).status_code == 303

    changed = await mailpass(
        "users", "set-password", "cli@example.com", "--password-stdin", stdin="another password\n"
    )
    assert changed.code == 0, changed.err
    assert (await browsers().sign_in("cli@example.com")).status_code == 401
    assert (await browsers().sign_in("cli@example.com", "another password")).status_code == 303
