"""``mailpass-client``, the SDK's own distribution (``sdks/python``): built into a wheel and
installed in a new, empty virtualenv, it brings httpx and nothing of the server, and
``import mailpass`` there sends through a real running server."""

from __future__ import annotations

import asyncio
import json
import sys
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SERVER_ONLY = {"fastapi", "sqlalchemy", "uvicorn", "pydantic", "aiosmtplib", "alembic", "asyncpg"}

PROGRAM = """
import importlib.metadata, importlib.util, json, sys
import mailpass, mailpass.webhooks
client = mailpass.Client(sys.argv[1], base_url=sys.argv[2])
sent = client.mail.send(to="user@example.com", subject="From the client alone", text="Hi")
print(json.dumps({
    "message_id": sent.message_id,
    "distributions": sorted(d.metadata["Name"].lower() for d in importlib.metadata.distributions()),
    "server_code": importlib.util.find_spec("mailpass.api") is not None,
    "verify": callable(mailpass.webhooks.verify),
    "file": mailpass.__file__,
}))
"""


async def run(*command: str | Path) -> str:
    process = await asyncio.create_subprocess_exec(
        *map(str, command), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 300)
    assert process.returncode == 0, output.decode()
    return output.decode()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite alone: what is installed, not the database, is what this is about."""
    return f"sqlite:///{tmp_path / 'mailpass.sqlite3'}"


async def test_the_client_distribution_needs_nothing_of_the_server(
    live_server, make_account, smtp_sink, tmp_path
):
    account = await make_account(sink=smtp_sink)
    wheels = tmp_path / "wheels"
    await run(
        sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, ROOT / "sdks/python"
    )
    [wheel] = wheels.glob("mailpass_client-*.whl")
    environment = tmp_path / "app-venv"
    await asyncio.to_thread(venv.create, environment, with_pip=True)
    python = environment / "bin" / "python"
    await run(python, "-m", "pip", "install", "-q", "--disable-pip-version-check", wheel)

    found = json.loads(await run(python, "-c", PROGRAM, account.key, live_server.base_url))

    assert found["file"].startswith(str(environment))  # not this checkout's source
    assert "mailpass-client" in found["distributions"]
    assert "httpx" in found["distributions"]
    assert not SERVER_ONLY & set(found["distributions"]), found["distributions"]
    assert found["server_code"] is False
    assert found["verify"] is True
    [received] = smtp_sink.messages
    assert received.message["Message-ID"] == found["message_id"]
