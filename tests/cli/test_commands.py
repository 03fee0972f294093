"""The `mailpass` command, run as users run it: a real process, real database, real SMTP server."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from mailpass.storage.tables import providers as providers_table


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.code != 0
    assert result.out == ""
    assert "Traceback" not in result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    for fragment in fragments:
        assert fragment in lines[0]


async def test_users_and_keys(mailpass):
    created = await mailpass("users", "create", "owner@example.com")
    assert created.code == 0, created.err
    assert created.out.strip().isdigit()
    assert_one_line_error(await mailpass("users", "create", "owner@example.com"), "already exists")
    assert_one_line_error(await mailpass("users", "create", "nope"), "not a valid")

    live = await mailpass("keys", "create", "--user", "owner@example.com", "--name", "ci")
    assert live.code == 0, live.err
    assert re.fullmatch(r"mp_live_[A-Za-z0-9_-]{32}\n", live.out)
    test = await mailpass(
        "keys", "create", "--user", "owner@example.com", "--test", "--permission", "mail"
    )
    assert re.fullmatch(r"mp_test_[A-Za-z0-9_-]{32}\n", test.out)
    assert_one_line_error(await mailpass("keys", "create", "--user", "ghost@example.com"), "ghost")

    listed = await mailpass("keys", "list")
    lines = [line.split("\t") for line in listed.out.splitlines()]
    assert lines[0] == [
        "1",
        "ci",
        live.out[:12],
        "domains,keys,mail,providers,suppressions,webhooks",
        "never",
        "live",
    ]
    assert lines[1] == ["2", "default", test.out[:12], "mail", "never", "test"]

    assert (await mailpass("keys", "revoke", "1")).code == 0
    assert (await mailpass("keys", "list")).out.splitlines()[0].endswith("\trevoked")
    assert_one_line_error(await mailpass("keys", "revoke", "1"), "no active key")


async def test_provider_kinds_fill_in_their_relays(mailpass, database):
    await mailpass("users", "create", "owner@example.com")
    base = ("providers", "add", "--user", "owner@example.com")
    ses = await mailpass(
        *base,
        "--name",
        "ses",
        "--kind",
        "ses",
        "--region",
        "eu-west-1",
        "--username",
        "AKIA",
        "--password-env",
        "SES_PASSWORD",
        "--from-email",
        "no-reply@shop.example",
        "--hourly-limit",
        "100",
        env={"SES_PASSWORD": "ses-secret-value"},
    )
    assert ses.code == 0, ses.err
    grid = await mailpass(
        *base, "--name", "grid", "--kind", "sendgrid", "--password-env", "SG", env={"SG": "SG.key"}
    )
    gun = await mailpass(*base, "--name", "gun", "--kind", "mailgun", "--region", "eu", "--default")
    assert grid.code == gun.code == 0
    assert_one_line_error(await mailpass(*base, "--name", "bad", "--kind", "ses"), "region")
    assert_one_line_error(
        await mailpass(*base, "--name", "x", "--host", "h.example", "--password-env", "UNSET_VAR"),
        "UNSET_VAR",
    )
    assert_one_line_error(await mailpass(*base, "--name", "ses", "--host", "h.example"), "ses")
    assert_one_line_error(
        await mailpass(*base, "--name", "typo", "--host", "smtp example.com"),
        "'smtp example.com'",
        "neither a host name nor an IP address",
    )

    listed = (await mailpass("providers", "list")).out.splitlines()
    rows = {line.split("\t")[2]: line.split("\t") for line in listed}
    assert rows["ses"][4] == "email-smtp.eu-west-1.amazonaws.com:587/starttls"
    assert rows["ses"][6] == "100/h -/d"
    assert rows["grid"][4] == "smtp.sendgrid.net:587/starttls"
    assert rows["gun"][4] == "smtp.eu.mailgun.org:587/starttls"
    assert rows["gun"][-1] == "default"
    assert len(rows["ses"]) == 7  # not the default: the first one was, until --default moved it
    assert "ses-secret-value" not in "\n".join(listed)

    async with database.read() as connection:
        stored = (await connection.execute(sa.select(providers_table))).mappings().all()
    by_name = {row["name"]: row for row in stored}
    assert by_name["grid"]["username"] == "apikey"
    assert "ses-secret-value" not in by_name["ses"]["password_encrypted"]
    assert sum(row["is_default"] for row in stored) == 1

    assert (await mailpass("providers", "set-default", "ses")).code == 0
    listed = (await mailpass("providers", "list")).out.splitlines()
    assert [line.split("\t")[2] for line in listed if line.endswith("default")] == ["ses"]


async def test_providers_test_prints_the_server_replies(mailpass, make_smtp_sink):
    sink = await make_smtp_sink(tls_mode="starttls", auth={"mailer": "s3cret"}, require_auth=True)
    await mailpass("users", "create", "owner@example.com")
    added = await mailpass(
        "providers",
        "add",
        "--user",
        "owner@example.com",
        "--name",
        "relay",
        "--host",
        "localhost",
        "--port",
        str(sink.port),
        "--security",
        "starttls",
        "--username",
        "mailer",
        "--password-env",
        "PW",
        env={"PW": "s3cret"},
    )
    assert added.code == 0, added.err

    result = await mailpass("providers", "test", "relay")

    assert result.code == 0, result.err
    assert result.out.startswith("S: 220")
    assert "C: STARTTLS" in result.out
    assert re.search(r"^S: 235", result.out, re.MULTILINE)
    assert "s3cret" not in result.out


async def test_providers_test_failures_are_one_line(mailpass, make_smtp_sink):
    sink = await make_smtp_sink(tls_mode="starttls", auth={"mailer": "right"}, require_auth=True)
    await mailpass("users", "create", "owner@example.com")
    common = ("providers", "add", "--user", "owner@example.com")
    await mailpass(
        *common,
        "--name",
        "wrongpw",
        "--host",
        "localhost",
        "--port",
        str(sink.port),
        "--username",
        "mailer",
        "--password-env",
        "PW",
        env={"PW": "wrong"},
    )
    await mailpass(
        *common, "--name", "closed", "--host", "127.0.0.1", "--port", "1", "--security", "none"
    )
    await mailpass(
        *common, "--name", "nohost", "--host", "no-such-host.invalid", "--security", "none"
    )

    assert_one_line_error(await mailpass("providers", "test", "wrongpw"), "535")
    assert_one_line_error(await mailpass("providers", "test", "closed"), "127.0.0.1:1")
    assert_one_line_error(await mailpass("providers", "test", "nohost"), "no-such-host.invalid")
    assert_one_line_error(await mailpass("providers", "test", "missing"), "missing")


async def test_db_upgrade_is_idempotent(mailpass):
    first = await mailpass("db", "upgrade")
    second = await mailpass("db", "upgrade")
    assert first.code == second.code == 0
    assert first.out == ""


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mysql://x/y", "SQLite or PostgreSQL"),
        ("postgresql://postgres@127.0.0.1:1/none", "cannot reach the database"),
    ],
)
async def test_bad_database_url_is_one_line(mailpass, url, fragment):
    result = await mailpass("db", "upgrade", env={"MAILPASS_DATABASE_URL": url})
    assert_one_line_error(result, fragment)


async def test_providers_webhook_prints_the_url_and_sets_the_key(mailpass, database):
    await mailpass("users", "create", "owner@example.com")
    base = ("providers", "add", "--user", "owner@example.com")
    assert (await mailpass(*base, "--name", "gun", "--kind", "mailgun")).code == 0
    assert (
        await mailpass(*base, "--name", "ses", "--kind", "ses", "--region", "us-east-1")
    ).code == 0
    assert (await mailpass(*base, "--name", "relay", "--host", "smtp.shop.example")).code == 0
    async with database.read() as connection:
        stored = (await connection.execute(sa.select(providers_table))).mappings().all()
    by_name = {row["name"]: row for row in stored}

    shown = await mailpass("providers", "webhook", "gun")
    assert shown.code == 0, shown.err
    gun = by_name["gun"]
    assert shown.out.strip().endswith(f"/hooks/{gun['id']}/mailgun/{gun['hook_token']}")
    assert "NOT set" in shown.err

    keyed = await mailpass("providers", "webhook", "gun", env={"MAILPASS_HOOK_KEY": "key-abc"})
    assert keyed.code == 0, keyed.err
    assert "webhook key: set" in keyed.err
    async with database.read() as connection:
        stored_key = (
            await connection.execute(
                sa.select(providers_table.c.hook_key_encrypted).where(
                    providers_table.c.id == gun["id"]
                )
            )
        ).scalar_one()
    assert stored_key
    assert "key-abc" not in stored_key

    assert_one_line_error(
        await mailpass("providers", "webhook", "ses", "--key", "x"), "SNS signs its messages"
    )
    assert (await mailpass("providers", "webhook", "ses")).code == 0
    assert_one_line_error(await mailpass("providers", "webhook", "relay"), "no events by webhook")
    removed = await mailpass("providers", "webhook", "gun", "--remove-key")
    assert removed.code == 0
    assert "NOT set" in removed.err
