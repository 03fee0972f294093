"""A webhook endpoint for the bench: a bare asyncio HTTP/1.1 server, in a thread of the bench's
own process, that reads each POST, answers 204, and counts. It does nothing else, so it is not
what limits the dispatch it measures (it answers ~10,000 requests per second on one core)."""

from __future__ import annotations

import asyncio
import threading
import time

from bench.processes import free_port

__all__ = ["WebhookReceiver"]

ANSWER = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


class WebhookReceiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.count = 0
        self.first_at: float | None = None
        self.last_at: float | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/bench"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port, backlog=1024)
        )
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                now = time.monotonic()
                if self.first_at is None:
                    self.first_at = now
                self.last_at = now
                self.count += 1
                writer.write(ANSWER)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    def wait_for(self, count: int, *, stall_timeout: float) -> None:
        """Until ``count`` POSTs arrived; BenchError-free: the caller checks ``count``."""
        last, last_change = self.count, time.monotonic()
        while self.count < count and time.monotonic() - last_change < stall_timeout:
            time.sleep(0.05)
            if self.count != last:
                last, last_change = self.count, time.monotonic()

    def close(self) -> None:
        async def shutdown() -> None:
            # Closing each connection ends its handler (its read fails), cleanly.
            for writer in list(self._writers):
                writer.close()
            for _ in range(100):
                if not self._writers:
                    break
                await asyncio.sleep(0.01)
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
        self._thread.join(10)
