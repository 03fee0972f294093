"""``import mailpass`` is the SDK: it must not drag in the server and its dependencies."""

from __future__ import annotations

import json
import subprocess
import sys

SERVER_DEPENDENCIES = {
    "fastapi",
    "starlette",
    "pydantic",
    "pydantic_core",
    "pydantic_settings",
    "sqlalchemy",
    "alembic",
    "aiosqlite",
    "asyncpg",
    "aiosmtplib",
    "aiosmtpd",
    "uvicorn",
    "email_validator",
    "cryptography",
    "argon2",
    "orjson",
}
SERVER_PACKAGES = {
    "mailpass.api",
    "mailpass.accounts",
    "mailpass.config",
    "mailpass.delivery",
    "mailpass.messages",
    "mailpass.providers",
    "mailpass.storage",
    "mailpass.services",
}

PROBE = """
import json, sys
import mailpass
mailpass.Client, mailpass.AsyncClient, mailpass.SendFailedError
from mailpass.client import Client
print(json.dumps(sorted(sys.modules)))
"""


def test_importing_the_sdk_loads_httpx_and_nothing_of_the_server():
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(result.stdout))

    assert "httpx" in loaded
    assert {name.split(".")[0] for name in loaded} & SERVER_DEPENDENCIES == set()
    assert {name for name in loaded if name.startswith(tuple(SERVER_PACKAGES))} == set()
