"""What the tests of the SDKs in other languages share: the seed's examples as the API document
gives them, and running another runtime's program against the live server."""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from mailpass.webhooks.signing import new_secret, sign

__all__ = [
    "RUNTIMES_REQUIRED",
    "SDKS",
    "SEED_JS_EXAMPLE",
    "SEED_PHP_EXAMPLE",
    "Run",
    "run_program",
    "signed_delivery",
    "substitute",
]

# Set by scripts/test, which installs Node.js, php-cli and PHPUnit: a missing one then fails the
# SDK's tests instead of skipping them.
RUNTIMES_REQUIRED = os.environ.get("MAILPASS_SDK_RUNTIMES") == "required"
SDKS = Path(__file__).resolve().parents[2] / "sdks"
SEED_URL = "https://dev.mailpass.im"
RUN_TIMEOUT = 240.0  # seconds

# The API document's examples, verbatim. The tests replace only the URL and the key.
SEED_JS_EXAMPLE = """\
// Single send
const response = await fetch('https://dev.mailpass.im/api/v1/mail/send', {
  method: 'POST',
  headers: {
    'Authorization': 'Bearer YOUR_API_KEY',
    'Content-Type': 'application/json'
  },
  body: JSON.stringify({
    to: 'user@example.com',
    subject: 'Hello',
    html: '<p>Hello World</p>'
  })
});
const data = await response.json();
console.log(data.data.message_id);
"""

SEED_PHP_EXAMPLE = """\
$client = new MailPass\\Client('mp_live_YOUR_KEY');

// Single send
$result = $client->mail->send([
    'to' => 'user@example.com',
    'subject' => 'Hello',
    'html' => '<p>Hello World</p>',
]);
echo $result['data']['message_id'];
"""


def substitute(example: str, base_url: str, key: str) -> str:
    """The example with the test server's URL and key for the document's placeholders."""
    return (
        example.replace(SEED_URL, base_url)
        .replace("mp_live_YOUR_KEY", key)
        .replace("YOUR_API_KEY", key)
    )


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def explain(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


async def run_program(*command: str, env: dict[str, str], cwd: Path | None = None) -> Run:
    """Run another runtime's program without blocking the test's event loop (the SMTP
    servers run on it)."""
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT)
    except TimeoutError:
        process.kill()
        stdout, stderr = await process.communicate()
    return Run(process.returncode or 0, stdout.decode(), stderr.decode())


def signed_delivery() -> str:
    """A webhook delivery signed by the server's own code, as JSON for another runtime."""
    secret = new_secret()
    body = json.dumps({"type": "email.test", "data": {"message": "hello"}})
    timestamp = int(time.time())
    headers = {
        "webhook-id": "msg_test",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, "msg_test", timestamp, body.encode()),
    }
    return json.dumps({"body": body, "headers": headers, "secret": secret})
