"""Running MailPass as users do: the `mailpass` command and its servers as real processes,
with the test's database and the test SMTP server's CA."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import pytest
import sqlalchemy as sa

from mailpass.storage.tables import messages

STARTUP_TIMEOUT = 20.0  # seconds
DRAIN_TIMEOUT = 60.0  # seconds


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli_env(settings, database):
    """The environment a user would export: database, data directory, CA for the test SMTP."""
    env = dict(os.environ)
    env.update(
        MAILPASS_DATABASE_URL=settings.resolved_database_url,
        MAILPASS_DATA_DIR=str(settings.data_dir),
        MAILPASS_SECRET_KEY=settings.secret_key,
        MAILPASS_SMTP_CA_FILE=str(settings.smtp_ca_file),
        MAILPASS_SMTP_TIMEOUT="5",
    )
    env.pop("MAILPASS_DEBUG", None)
    return env


@pytest.fixture
def mailpass(cli_env):
    async def run(*args: str, stdin: str | None = None, env: dict | None = None) -> Result:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mailpass",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**cli_env, **(env or {})},
        )
        out, err = await process.communicate(stdin.encode() if stdin else None)
        return Result(process.returncode, out.decode(), err.decode())

    return run


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def running(*args: str, env: dict[str, str]):
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mailpass",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def wait_healthy(base_url: str, process: asyncio.subprocess.Process) -> None:
    async with httpx.AsyncClient(base_url=base_url) as client:
        deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT
        while asyncio.get_running_loop().time() < deadline:
            if process.returncode is not None:
                stderr = await process.stderr.read()
                pytest.fail(f"server exited early: {stderr.decode()}")
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    pytest.fail("server did not become healthy")


async def post_batches(base_url, account, count, prefix):
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for start in range(0, count, 100):
            items = [
                {"to": f"{prefix}{i}@example.com", "subject": f"{prefix} {i}", "text": "x"}
                for i in range(start, min(start + 100, count))
            ]
            response = await client.post(
                "/api/v1/mail/send-batch", json={"messages": items}, headers=account.headers
            )
            assert response.status_code == 200, response.text
            assert response.json()["data"]["queued"] == len(items)


async def wait_until(predicate, timeout=DRAIN_TIMEOUT):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("timed out")
        await asyncio.sleep(0.05)


async def statuses(database):
    async with database.read() as connection:
        rows = await connection.execute(sa.select(messages.c.status))
        return Counter(rows.scalars().all())


def delivered_ids(sink):
    return Counter(m.message["Message-ID"] for m in sink.messages)
