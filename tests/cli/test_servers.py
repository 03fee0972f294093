"""`mailpass serve` and `mailpass dev` as real processes, used over real HTTP and real SMTP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import smtplib
import socket
import sys

import httpx
import pytest

from mailpass.runtime.supervisor import (
    RESTART_PAUSE,
    RESTART_PAUSE_MAX,
    STEADY_AFTER,
    restart_pause,
)
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

        # The relay, as the banner says to use it (plain-text AUTH on its loopback port).
        relay = re.search(r"host 127\.0\.0\.1, port (\d+), user (\S+), password (\S+)", banner)
        assert relay.group(3) == key

        def submit() -> None:
            with smtplib.SMTP("127.0.0.1", int(relay.group(1)), timeout=10) as client:
                client.login(relay.group(2), relay.group(3))
                client.sendmail(
                    "app@example.com",
                    ["user@example.com"],
                    b"From: app@example.com\r\nTo: user@example.com\r\n"
                    b"Subject: Over SMTP\r\n\r\nHello\r\n",
                )

        await asyncio.to_thread(submit)
        captured = ""
        while not captured.strip():
            captured = (await asyncio.wait_for(dev.stdout.readline(), 10)).decode()
        assert captured.startswith("captured #2")
        assert "subject=Over SMTP" in captured

    assert (tmp_path / "data" / "mailpass.sqlite3").exists()
    assert (tmp_path / "data" / "dev-smtp" / "key.pem").stat().st_mode & 0o777 == 0o600
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


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _tcp_sockets(port: int) -> dict[str, str]:
    """inode -> state of the IPv4 TCP sockets whose local port is ``port``."""
    sockets = {}
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                sockets[fields[9]] = fields[3]  # "0A": listening, "01": established
    return sockets


def _connections_per_process(pids: list[int], port: int) -> dict[int, int]:
    established = {inode for inode, state in _tcp_sockets(port).items() if state == "01"}
    return {pid: len(_socket_inodes(pid) & established) for pid in pids}


async def _wait_until_listening(pids: list[int], port: int) -> None:
    deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT
    while True:
        listening = {inode for inode, state in _tcp_sockets(port).items() if state == "0A"}
        if all(_socket_inodes(pid) & listening for pid in pids):
            return
        assert asyncio.get_running_loop().time() < deadline, "not every process listens"
        await asyncio.sleep(0.1)


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
        await _wait_until_listening(_server_processes(server.pid), port)
        # Each process has a socket of its own: the kernel spreads connections over both.
        connections = [await asyncio.open_connection("127.0.0.1", port) for _ in range(16)]
        for reader, writer in connections:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: mailpass\r\n\r\n")
            assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        spread = _connections_per_process(_server_processes(server.pid), port)
        assert sum(spread.values()) == 16, spread
        assert min(spread.values()) > 0, spread
        for _reader, writer in connections:
            writer.close()

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
        # A process that dies is replaced, and the port is served by two again.
        os.kill(children[0], signal.SIGKILL)
        deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT
        while children[0] in (now := _server_processes(server.pid)) or len(now) < 2:
            assert asyncio.get_running_loop().time() < deadline, now
            await asyncio.sleep(0.1)
        await _wait_until_listening(now, port)
        async with httpx.AsyncClient(base_url=base_url) as client:
            for _ in range(8):
                assert (await client.get("/healthz")).status_code == 200
        children = _server_processes(server.pid)
        server.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.wait(), 15) in (0, -signal.SIGTERM)
        # The supervisor waited for each of them before exiting.
        assert not [child for child in children if os.path.exists(f"/proc/{child}")]
        log = (await server.stderr.read()).decode()
        assert re.search(r"exited with -9 after \d+ s; starting another in 1 s", log), log


def test_a_process_that_keeps_dying_young_is_replaced_ever_less_often():
    pauses: list[float] = []
    pause = None
    for _ in range(7):
        pause = restart_pause(pause, lived=2.0)
        pauses.append(pause)
    assert pauses == [RESTART_PAUSE * 2**n for n in range(5)] + [RESTART_PAUSE_MAX] * 2
    # One that ran for a while before dying is replaced as soon as a first one would be.
    assert restart_pause(RESTART_PAUSE_MAX, lived=STEADY_AFTER) == RESTART_PAUSE


async def test_serve_with_processes_refuses_a_port_in_use(cli_env):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mailpass",
            "serve",
            "--port",
            str(port),
            "--processes",
            "2",
            env=cli_env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _out, err = await asyncio.wait_for(process.communicate(), STARTUP_TIMEOUT)
    assert process.returncode == 1
    assert err.decode().strip().splitlines() == [
        f"Error: PortInUse: 127.0.0.1:{port} is already in use"
    ]


@pytest.mark.parametrize(
    ("command", "option", "value"),
    [
        ("serve", "--port", "80000"),
        ("serve", "--port", "0"),
        ("dev", "--port", "65536"),
        ("dev", "--smtp-port", "-1"),
    ],
)
async def test_a_port_out_of_range_is_refused_before_anything_starts(
    mailpass, command, option, value
):
    # Were the value taken, the server would run on: the wait fails the test instead.
    refused = await asyncio.wait_for(mailpass(command, option, value), STARTUP_TIMEOUT)
    assert refused.code == 2
    assert f"Invalid value for '{option}': {value} is not in the range" in refused.err
    assert "Traceback" not in refused.err


GIVING_UP_SERVER = """
import sys

from mailpass.config import Settings
from mailpass.delivery.worker import QueueWorker
from mailpass.runtime import tasks
from mailpass.server import run_server


async def broken(self, *, until_idle=False):
    raise RuntimeError("a bug in the worker")


QueueWorker.run = broken  # every start of it crashes
tasks.restart_pause = lambda previous, lived: 0.05  # not the real 1, 2, 4, 8 s
run_server(Settings(), host="127.0.0.1", port=int(sys.argv[1]), access_log=False, worker=True)
"""


async def test_serve_exits_non_zero_when_its_worker_cannot_be_kept_running(cli_env):
    """A worker that keeps crashing is started again a few times, then the server stops and
    the process exits 70, so that its supervisor or service manager starts a fresh one,
    instead of answering requests whose mail nobody sends."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        GIVING_UP_SERVER,
        str(port),
        env=cli_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), STARTUP_TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = stderr.decode()
    assert process.returncode == 70, log
    assert log.count("the queue worker crashed; starting it again") == 4
    assert "the queue worker crashed 5 times in a row; giving up on it" in log
    assert "RuntimeError: a bug in the worker" in log


@pytest.mark.parametrize("processes", ["1", "2"])
async def test_serve_stops_reading_a_head_that_never_ends(cli_env, processes):
    """Header fields without end: answered 431 in the envelope once the cap (32 KiB, and a
    margin for the request line) is past, and the connection closed; the server does not hold
    the 50 MB the client would send. A head within the cap is answered as ever."""
    port = free_port()
    async with running(
        "serve", "--port", str(port), "--no-worker", "--processes", processes, env=cli_env
    ) as process:
        await wait_healthy(f"http://127.0.0.1:{port}", process)

        def send_head(size: int) -> tuple[int, bytes]:
            head = b"GET /api/v1/mail/status/x HTTP/1.1\r\nHost: t\r\nX-Pad: "
            head += b"a" * size + b"\r\n\r\n"
            sent = 0
            with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
                try:
                    while sent < len(head):
                        sent += connection.send(head[sent : sent + 65536])
                except OSError:
                    pass  # it stopped reading and closed
                answer = b""
                with contextlib.suppress(OSError):
                    while chunk := connection.recv(65536):
                        answer += chunk
            return sent, answer

        sent, answer = await asyncio.to_thread(send_head, 50_000_000)
        assert answer.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), answer
        body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert body["error"]["code"] == "HEADERS_TOO_LARGE"
        assert sent < 10_000_000  # it was not all read
        _, small = await asyncio.to_thread(send_head, 100)
        assert small.startswith(b"HTTP/1.1 401 "), small  # no key: the endpoint answered
