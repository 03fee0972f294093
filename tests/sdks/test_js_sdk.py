"""The JavaScript SDK (``sdks/js``) under Node's own test runner, and the API document's
``fetch`` example run verbatim (only the URL and the key replaced), against a real server on
both databases and a real SMTP server."""

from __future__ import annotations

import shutil

import pytest
from sdk_helpers import (
    RUNTIMES_REQUIRED,
    SDKS,
    SEED_JS_EXAMPLE,
    run_program,
    signed_delivery,
    substitute,
)

from mailpass.config import Settings
from tcp_fixtures import DroppingProxy

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("node") is None and not RUNTIMES_REQUIRED,
        reason="Node.js is not installed (scripts/test installs it)",
    ),
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhooks_allow_private": True})


async def test_the_seed_fetch_example_runs_verbatim(live_server, make_account, smtp_sink, tmp_path):
    account = await make_account(sink=smtp_sink)
    program = tmp_path / "seed.mjs"
    program.write_text(substitute(SEED_JS_EXAMPLE, live_server.base_url, account.key))

    run = await run_program("node", str(program), env={})

    assert run.returncode == 0, run.explain()
    message_id = run.stdout.strip()
    [received] = smtp_sink.messages
    assert received.message["Message-ID"] == message_id
    assert received.message["Subject"] == "Hello"


async def test_the_sdk_passes_its_own_tests_against_the_server(
    live_server, make_account, smtp_sink, make_smtp_sink
):
    account = await make_account(sink=smtp_sink)
    stranger = await make_account("stranger@example.com", sink=smtp_sink)
    spare = await make_smtp_sink()
    dropping = DroppingProxy(int(live_server.base_url.rpartition(":")[2]), drop=1)
    dropping_url = await dropping.start()

    run = await run_program(
        "node",
        "--test",
        "test/",
        cwd=SDKS / "js",
        env={
            "MAILPASS_API_URL": live_server.base_url,
            "MAILPASS_API_KEY": account.key,
            "MAILPASS_STRANGER_KEY": stranger.key,
            "MAILPASS_SINK_PORT": str(spare.port),
            "MAILPASS_SIGNED": signed_delivery(),
            "MAILPASS_DROPPING_URL": dropping_url,
        },
    )
    await dropping.stop()
    assert dropping.connections == 2  # the lost answer, and the try after it

    assert run.returncode == 0, run.explain()
    assert "# fail 0" in run.stdout, run.explain()
    # Sent now: the message with an attachment, the ignored-field one, the one sent twice with
    # one idempotency key, the retried one; the batch's good item once the worker took it.
    subjects = sorted(m.message["Subject"] for m in await smtp_sink.wait_for(6))
    assert subjects == ["A", "Hello from JS", "Lost answer", "Once", "Retry", "Typo"]
    [attached] = [m for m in smtp_sink.messages if m.message["Subject"] == "Hello from JS"]
    [part] = list(attached.message.iter_attachments())
    assert (part.get_filename(), part.get_content()) == ("hi.txt", "hi there")
