"""``mailpass send``: the SDK from the command line, against a real server and SMTP server."""

from __future__ import annotations

import pytest


@pytest.fixture
def api_env(live_server):
    def env(key: str) -> dict[str, str]:
        return {"MAILPASS_API_URL": live_server.base_url, "MAILPASS_API_KEY": key}

    return env


async def test_send_prints_the_message_id(mailpass, api_env, make_account, smtp_sink, tmp_path):
    account = await make_account(sink=smtp_sink)
    page = tmp_path / "welcome.html"
    page.write_text("<h1>Welcome, Zoë</h1>", encoding="utf-8")

    result = await mailpass(
        "send",
        "--to",
        "user@example.com",
        "--to",
        "Other <other@example.com>",
        "--subject",
        "Welcome",
        "--html-file",
        str(page),
        "--text",
        "Welcome, Zoë",
        "--from",
        "support@yourdomain.com",
        env=api_env(account.key),
    )

    assert result.code == 0, result.err
    message_id = result.out.strip()
    [received] = await smtp_sink.wait_for(1)
    assert received.message["Message-ID"] == message_id
    assert received.message["From"] == "support@yourdomain.com"
    assert sorted(received.rcpt_tos) == ["other@example.com", "user@example.com"]
    html = received.message.get_body(("html",)).get_content()
    assert "Welcome, Zoë" in html


async def test_send_failure_exits_non_zero_with_the_code(
    mailpass, api_env, make_account, make_smtp_sink
):
    sink = await make_smtp_sink(data_replies=["550 5.1.1 no such user"])
    account = await make_account(sink=sink)

    result = await mailpass(
        "send",
        "--to",
        "user@example.com",
        "--subject",
        "Hi",
        "--text",
        "x",
        env=api_env(account.key),
    )

    assert result.code == 1
    assert result.out == ""
    assert "SEND_FAILED" in result.err
    assert "550 5.1.1 no such user" in result.err
    assert "Traceback" not in result.err


async def test_invalid_fields_are_listed(mailpass, api_env, make_account, smtp_sink):
    account = await make_account(sink=smtp_sink)
    result = await mailpass(
        "send",
        "--to",
        "nobody",
        "--subject",
        "Hi",
        "--html",
        "<p>x</p>",
        env=api_env(account.key),
    )
    assert result.code == 1
    assert "VALIDATION_ERROR" in result.err
    assert "  to: 'nobody' is not a valid e-mail address" in result.err
    assert smtp_sink.messages == []


async def test_send_needs_a_key_and_a_body(mailpass, api_env):
    no_key = await mailpass(
        "send",
        "--to",
        "user@example.com",
        "--subject",
        "Hi",
        "--text",
        "x",
        env={**api_env(""), "MAILPASS_API_KEY": ""},
    )
    assert no_key.code == 1
    assert "MAILPASS_API_KEY" in no_key.err

    no_body = await mailpass(
        "send", "--to", "user@example.com", "--subject", "Hi", env=api_env("mp_live_x")
    )
    assert no_body.code == 2
    assert "--text, --html or --html-file" in no_body.err


async def test_an_unreachable_server_is_one_line(mailpass):
    from process_fixtures import free_port

    result = await mailpass(
        "send",
        "--to",
        "user@example.com",
        "--subject",
        "Hi",
        "--text",
        "x",
        env={
            "MAILPASS_API_URL": f"http://127.0.0.1:{free_port()}",
            "MAILPASS_API_KEY": "mp_live_" + "x" * 32,
        },
    )
    assert result.code == 1
    assert "could not talk to the MailPass server" in result.err
    assert len(result.err.strip().splitlines()) == 1
