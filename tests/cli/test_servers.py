"""`mailpass serve` and `mailpass dev` as real processes, used over real HTTP and real SMTP."""

from __future__ import annotations

import asyncio
import os
import re
import signal

import httpx

from process_fixtures import STARTUP_TIMEOUT, free_port, running, wait_healthy

SEED_CURL_BODY = '{"to": "user@example.com", "subject": "Hello", "html": "<p>Hello World</p>"}'


async def test_serve_sends_the_seed_request_through_a_real_provider(
    cli_env, mailpass, make_smtp_sink
):
    sink = await make_smtp_sink(tls_mode="starttls", auth={"app": "pw"}, require_auth=True)
    await mailpass("users", "create", "owner@example.com")
    await mailpass(
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
        "--username",
        "app",
        "--password-env",
        "PW",
        "--from-email",
        "support@yourdomain.com",
        "--default",
        env={"PW": "pw"},
    )
    key = (await mailpass("keys", "create", "--user", "owner@example.com")).out.strip()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"

    async with running("serve", "--port", str(port), env=cli_env) as server:
        await wait_healthy(base_url, server)
        async with httpx.AsyncClient(base_url=base_url) as client:
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            sent = await client.post("/api/v1/mail/send", content=SEED_CURL_BODY, headers=headers)
            assert sent.status_code == 200, sent.text
            message_id = sent.json()["data"]["message_id"]
            [received] = await sink.wait_for(1)
            assert received.message["Message-ID"] == message_id
            assert received.mail_from == "support@yourdomain.com"
            status = await client.get(f"/api/v1/mail/status/{message_id}", headers=headers)
            assert status.json()["data"]["message"]["status"] == "sent"
            bad = await client.post("/api/v1/mail/send", content=b"{", headers=headers)
            assert bad.status_code == 400
            assert bad.json()["error"]["code"] == "VALIDATION_ERROR"
        server.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells why.
        assert await asyncio.wait_for(server.wait(), 10) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in (await server.stderr.read()).decode()


async def test_dev_is_a_working_sandbox_in_one_command(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILPASS_")}
    env["MAILPASS_DATA_DIR"] = str(tmp_path / "data")  # the embedded default: SQLite in here
    port = free_port()

    async with running("dev", "--port", str(port), "--smtp-port", "0", env=env) as dev:
        banner = ""
        while "Try it" not in banner or not banner.rstrip().endswith("}'"):
            line = await asyncio.wait_for(dev.stdout.readline(), STARTUP_TIMEOUT)
            assert line, (await dev.stderr.read()).decode()
            banner += line.decode()
        key = re.search(r"API key \(shown once\): (mp_live_\S+)", banner).group(1)
        assert f"http://127.0.0.1:{port}/api/v1/mail/send" in banner
        assert f"Authorization: Bearer {key}" in banner
        sign_in = re.search(r"Dashboard: (\S+) \(sign in as (\S+), password (\S+)\)", banner)
        assert sign_in.group(1) == f"http://127.0.0.1:{port}/dashboard/"
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as browser:
            form = await browser.get("/dashboard/sign-in")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
            signed_in = await browser.post(
                "/dashboard/sign-in",
                data={
                    "csrf_token": csrf,
                    "next": "/dashboard/",
                    "email": sign_in.group(2),
                    "password": sign_in.group(3),
                },
            )
            assert signed_in.status_code in (302, 303), signed_in.text
            overview = await browser.get("/dashboard/")
            assert overview.status_code == 200
            assert sign_in.group(2) in overview.text

        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            response = await client.post(
                "/api/v1/mail/send",
                content=SEED_CURL_BODY,
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            )
        assert response.status_code == 200, response.text
        message_id = response.json()["data"]["message_id"]
        captured = ""
        while not captured.strip():
            captured = (await asyncio.wait_for(dev.stdout.readline(), 10)).decode()
        assert captured.startswith("captured #1")
        assert "to=user@example.com" in captured
        assert "subject=Hello" in captured
        assert f"message-id={message_id}" in captured

    assert (tmp_path / "data" / "mailpass.sqlite3").exists()
    assert (tmp_path / "data" / "secret_key").stat().st_mode & 0o777 == 0o600


def _server_processes(pid: int) -> list[int]:
    """The server processes uvicorn's supervisor ``pid`` started (multiprocessing's spawned
    children; not its resource tracker)."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as file:
                    parent = int(file.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{entry}/cmdline", "rb") as file:
                    command = file.read()
            except OSError:
                continue
            if parent == pid and b"spawn_main" in command:
                children.append(int(entry))
    return children


async def test_serve_runs_several_processes_on_one_port(cli_env, mailpass, make_smtp_sink):
    """`serve --processes 2`: two server processes share the port and the queue; every mail,
    sent now or queued, arrives exactly once; SIGTERM stops them all."""
    sink = await make_smtp_sink()
    await mailpass("users", "create", "owner@example.com")
    await mailpass(
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
        "none",
        "--from-email",
        "support@yourdomain.com",
        "--default",
    )
    key = (await mailpass("keys", "create", "--user", "owner@example.com")).out.strip()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"

    async with running("serve", "--port", str(port), "--processes", "2", env=cli_env) as server:
        await wait_healthy(base_url, server)
        deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT
        while len(_server_processes(server.pid)) < 2:  # the supervisor starts them in turn
            assert asyncio.get_running_loop().time() < deadline, _server_processes(server.pid)
            await asyncio.sleep(0.1)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=base_url, headers=headers) as client:

            async def send(n: int) -> str:
                body = {"to": f"now{n}@example.com", "subject": f"now {n}", "text": "hi"}
                answer = await client.post("/api/v1/mail/send", json=body)
                assert answer.status_code == 200, answer.text
                return str(answer.json()["data"]["message_id"])

            sent_now = await asyncio.gather(*(send(n) for n in range(20)))
            batch = {
                "messages": [
                    {"to": f"later{n}@example.com", "subject": f"later {n}", "text": "hi"}
                    for n in range(30)
                ]
            }
            queued = await client.post("/api/v1/mail/send-batch", json=batch)
            assert queued.status_code == 200, queued.text
            assert queued.json()["data"]["queued"] == 30
            received = await sink.wait_for(50)
        ids = sorted(message.message["Message-ID"] for message in received)
        assert len(set(ids)) == 50
        assert set(sent_now) <= set(ids)
        await asyncio.sleep(1.0)  # nothing more may arrive: no message is sent twice
        assert len(sink.messages) == 50
        children = _server_processes(server.pid)
        assert len(children) == 2
        server.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.wait(), 15) in (0, -signal.SIGTERM)
        # The supervisor waited for each of them before exiting.
        assert not [child for child in children if os.path.exists(f"/proc/{child}")]
