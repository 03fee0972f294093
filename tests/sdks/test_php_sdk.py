"""The PHP SDK (``sdks/php``) under PHPUnit, and the API document's PHP example run verbatim
(only the key replaced; the URL comes from ``MAILPASS_API_URL``, as the example names none),
with Debian's ``php-cli`` and ``phpunit``, against a real server on both databases and a real
SMTP server."""

from __future__ import annotations

import shutil

import pytest
from sdk_helpers import (
    RUNTIMES_REQUIRED,
    SDKS,
    SEED_PHP_EXAMPLE,
    run_program,
    signed_delivery,
    substitute,
)

from mailpass.config import Settings
from tcp_fixtures import DroppingProxy

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        (shutil.which("php") is None or shutil.which("phpunit") is None) and not RUNTIMES_REQUIRED,
        reason="php-cli and phpunit are not installed (scripts/test installs them)",
    ),
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhooks_allow_private": True})


async def test_the_seed_php_example_runs_verbatim(live_server, make_account, smtp_sink, tmp_path):
    account = await make_account(sink=smtp_sink)
    program = tmp_path / "seed.php"
    autoload = SDKS / "php" / "src" / "autoload.php"
    program.write_text(
        f"<?php\nrequire {str(autoload)!r};\n\n"
        + substitute(SEED_PHP_EXAMPLE, live_server.base_url, account.key)
    )

    run = await run_program("php", str(program), env={"MAILPASS_API_URL": live_server.base_url})

    assert run.returncode == 0, run.explain()
    message_id = run.stdout
    assert message_id.startswith("<")
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
        "phpunit",
        "--do-not-cache-result",
        cwd=SDKS / "php",
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
    assert "OK (" in run.stdout, run.explain()
    subjects = sorted(m.message["Subject"] for m in await smtp_sink.wait_for(5))
    assert subjects == ["A", "Hello from PHP", "Lost answer", "Once", "Typo"]
    [attached] = [m for m in smtp_sink.messages if m.message["Subject"] == "Hello from PHP"]
    [part] = list(attached.message.iter_attachments())
    assert (part.get_filename(), part.get_content()) == ("hi.txt", "hi there")
