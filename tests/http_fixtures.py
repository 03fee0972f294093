"""A real HTTP server for webhooks to reach (``webhook_receiver``): it notes each POST and
answers the statuses the test gives it in turn, then 200."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class Receiver:
    """An HTTP server that notes each POST and answers the statuses it is given in turn
    (then 200)."""

    def __init__(self, statuses: list[int], delays: list[float] | None = None) -> None:
        self.statuses = list(statuses)
        self.delays = list(delays or [])  # seconds to wait before answering, in turn
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.answering = 0  # requests being answered now
        self.busiest = 0  # the most answered at once
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with lock:
                    receiver.received.append((dict(self.headers.items()), body))
                    receiver.answering += 1
                    receiver.busiest = max(receiver.busiest, receiver.answering)
                    delay = receiver.delays.pop(0) if receiver.delays else 0.0
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                time.sleep(delay)
                with lock:
                    receiver.answering -= 1
                # The client may be gone by now (killed, or timed out): nobody to answer.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/mail"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook_receiver() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(statuses: list[int], delays: list[float] | None = None) -> Receiver:
        made.append(Receiver(statuses, delays))
        return made[-1]

    yield make
    for one in made:
        one.close()
