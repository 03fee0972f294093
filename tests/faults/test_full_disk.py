"""SQLite on a full disk (a real 8 MiB tmpfs): honest answers, nothing half-done.

- A message is never handed to a provider before its row is written: while the disk is full,
  /send answers 503 SERVICE_UNAVAILABLE with Retry-After, and nothing reaches the provider.
- Once the provider has taken a message, a status write the full disk refuses never becomes an
  error answer: /send answers ``sent``, and the record is written when there is room again.

Mounting needs root (CAP_SYS_ADMIN); where it is impossible the tests are skipped, saying so.
"""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from mailpass.accounts import service as accounts
from mailpass.api.app import create_app
from mailpass.config import Settings, load_instance_secret
from mailpass.providers import service as providers
from mailpass.providers.secrets import SecretBox
from mailpass.storage.tables import messages

ITEM = {"to": "user@example.com", "subject": "Hi", "text": "Hello"}
DISK_SIZE = "8m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_SIZE}", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


class Filler:
    """Fills the disk to the last byte, and frees it again."""

    def __init__(self, disk: Path) -> None:
        self.path = disk / "filler"

    def fill(self) -> None:
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for size in (1 << 20, 1 << 12, 1):  # big steps, then down to the last byte
                chunk = b"\0" * size
                while True:
                    try:
                        os.write(descriptor, chunk)
                    except OSError as exc:
                        if exc.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(descriptor)

    def free(self) -> None:
        self.path.unlink(missing_ok=True)


@pytest.fixture
async def app_on_small_disk(
    small_disk: Path, settings: Settings, database
) -> AsyncIterator[tuple[httpx.AsyncClient, Filler]]:
    if not database.is_sqlite:
        pytest.skip("a full disk under the database is the embedded SQLite's case")
    on_disk = settings.model_copy(
        update={"database_url": f"sqlite:///{small_disk / 'mailpass.sqlite3'}"}
    )
    app = create_app(on_disk)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        client.app = app  # type: ignore[attr-defined]
        yield client, Filler(small_disk)


async def account_on(app_client: httpx.AsyncClient, settings: Settings, sink) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """An account on the app's own database, its default provider the sink; its headers."""
    database = app_client.app.state.services.database  # type: ignore[attr-defined]
    user = await accounts.create_user(database, "owner@example.com")
    await providers.add_provider(
        database,
        SecretBox(load_instance_secret(settings)),
        user,
        providers.NewProvider(
            name="primary",
            kind="smtp",
            host="127.0.0.1",
            port=sink.port,
            security="none",
            from_email="sender@shop.example",
            make_default=True,
        ),
    )
    created = await accounts.create_key(database, user, permissions=["mail"])
    return {"Authorization": f"Bearer {created.key}"}


async def test_on_a_full_disk_send_is_503_and_nothing_reaches_the_provider(
    app_on_small_disk, settings, smtp_sink
):
    client, disk = app_on_small_disk
    headers = await account_on(client, settings, smtp_sink)
    assert (await client.post("/api/v1/mail/send", json=ITEM, headers=headers)).is_success

    disk.fill()
    answers = []
    # SQLite reuses room its files already have: the disk shows within a few writes.
    for _ in range(40):
        answer = await client.post("/api/v1/mail/send", json=ITEM, headers=headers)
        answers.append(answer)
        if answer.status_code != 200:
            break
    refused = answers[-1]
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert refused.headers["retry-after"] == "5"
    # Every message the provider got was answered sent; the refused one never left.
    assert len(smtp_sink.messages) == 1 + len(answers) - 1

    disk.free()
    again = await client.post("/api/v1/mail/send", json=ITEM, headers=headers)
    assert again.status_code == 200, again.text
    assert len(smtp_sink.messages) == len(answers) + 1


async def test_a_message_the_provider_took_is_answered_sent_when_the_disk_fills_meanwhile(
    app_on_small_disk, settings, make_smtp_sink
):
    client, disk = app_on_small_disk
    # The disk fills while the provider takes the message: its row is written, the provider
    # has it, and the status write after the 250 meets a full disk.
    sink = await make_smtp_sink(on_accept=disk.fill)
    headers = await account_on(client, settings, sink)
    late = client.app.state.services.mail.late_outcomes  # type: ignore[attr-defined]
    answers = []
    for _ in range(40):
        answer = await client.post("/api/v1/mail/send", json=ITEM, headers=headers)
        answers.append(answer)
        disk.free()
        if late.pending or answer.status_code != 200:
            break
        await asyncio.sleep(0)  # the next one fills the disk again
    # Never an error for mail that went out.
    assert [answer.status_code for answer in answers] == [200] * len(answers)
    assert all(answer.json()["data"]["status"] == "sent" for answer in answers)
    assert len(sink.messages) == len(answers)
    assert late.pending == 1, "the full disk never refused a status write"

    # With room again, the record catches up.
    for _ in range(100):
        if late.pending == 0:
            break
        await asyncio.sleep(0.1)
    assert late.pending == 0
    database = client.app.state.services.database  # type: ignore[attr-defined]
    async with database.read() as connection:
        statuses = (await connection.execute(sa.select(messages.c.status))).scalars().all()
    assert statuses == ["sent"] * len(answers)
