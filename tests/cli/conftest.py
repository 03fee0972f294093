"""Running the `mailpass` command as a user does: a real process with the test's database."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass

import pytest


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
