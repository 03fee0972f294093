"""What a server process does for speed: a response's writes leave in one send (what uvicorn
writes in one step of the event loop goes out together; nothing is lost, reordered or sent
after a close), and what start-up built is kept out of the garbage collector's way."""

from __future__ import annotations

import asyncio
import gc

import httpx

from mailpass.runtime.heap import YOUNG_COLLECTION_THRESHOLD, freeze_startup_heap
from mailpass.runtime.http import CoalescedWrites


class RecordingTransport:
    """Stands in for the socket's transport: records what reaches it."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.sent.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


async def test_writes_of_one_step_leave_together_at_its_end():
    transport = RecordingTransport()
    coalesced = CoalescedWrites(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    coalesced.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    coalesced.write(bytearray(b"ok"))
    assert transport.sent == []
    await asyncio.sleep(0)
    assert transport.sent == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"]
    coalesced.writelines([b"a", memoryview(b"b")])
    await asyncio.sleep(0)
    assert transport.sent[1:] == [b"ab"]


async def test_close_sends_what_is_pending_first_and_later_writes_go_nowhere():
    transport = RecordingTransport()
    coalesced = CoalescedWrites(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
    coalesced.write(b"last words")
    coalesced.close()
    assert transport.sent == [b"last words"]
    assert transport.closed
    coalesced.write(b"too late")
    await asyncio.sleep(0)
    assert transport.sent == [b"last words"]
    assert coalesced.get_extra_info("peername") == "info:peername"


def test_a_real_server_answers_keep_alive_head_and_large_responses(live_server):
    with httpx.Client(base_url=live_server.base_url) as client:
        for _ in range(3):  # one connection, kept alive
            health = client.get("/healthz")
            assert health.status_code == 200
            assert health.json()["data"] == {"status": "ok"}
        head = client.head("/healthz")  # what some load balancers' health checks send
        assert head.status_code == 200
        assert head.headers["content-type"] == "application/json"
        assert head.content == b""
        document = client.get("/openapi.json")
        assert document.status_code == 200
        assert document.json()["info"]["title"] == "MailPass"
        bundle = client.get("/docs/assets/swagger-ui-bundle.js")  # a file, sent in chunks
        assert bundle.status_code == 200
        assert len(bundle.content) == int(bundle.headers["content-length"]) > 500_000


class Cyclic:
    """An object in a reference cycle with itself, which tells when the collector frees it."""

    def __init__(self, freed: list[bool]) -> None:
        self.me = self
        self.freed = freed

    def __del__(self) -> None:
        self.freed.append(True)


def test_once_started_a_full_collection_skips_what_start_up_built():
    gc.unfreeze()
    threshold = gc.get_threshold()
    start_up = [[index] for index in range(10_000)]  # containers that live as long as we do
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() >= len(start_up)
        later = [[]]
        later.append(later)  # a reference cycle made after start-up is still collected
        del later
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_once_started_the_young_are_collected_less_often_but_still_without_being_asked():
    threshold = gc.get_threshold()
    try:
        freeze_startup_heap()
        assert gc.get_threshold() == (YOUNG_COLLECTION_THRESHOLD, *threshold[1:])
        freed: list[bool] = []
        Cyclic(freed)  # garbage only the collector can find
        gc.collect(0)  # nothing is waiting from before
        Cyclic(freed)
        few = [[] for _ in range(YOUNG_COLLECTION_THRESHOLD // 2)]
        assert len(freed) == 1  # a request's worth of new objects: no collection yet
        many = [[] for _ in range(YOUNG_COLLECTION_THRESHOLD)]
        assert len(freed) == 2  # past the threshold, the collector ran by itself
        del few, many
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
