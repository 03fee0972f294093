"""A real DNS server for the tests, on 127.0.0.1 over UDP and TCP, serving a zone they edit.

dnspython reads each question and writes each answer; the server is a pair of sockets on a
thread. Names the zone does not hold are NXDOMAIN; a name held with other types answers with
no records (NOERROR); ``failing`` names answer SERVFAIL, and ``silent`` ones nothing at all.

    with LocalDns() as dns_server:
        dns_server.add("shop.test", "MX", "10 mx1.shop.test")
        dns_server.add("mx1.shop.test", "A", "127.0.0.2")
        settings = settings.model_copy(update={"dns_resolver": dns_server.address})
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Self

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset
import pytest

TXT_CHUNK = 255  # a TXT record's strings are at most this long


def txt(value: str) -> str:
    """``value`` as a TXT record's text: quoted, in strings of at most 255 characters."""
    chunks = [value[i : i + TXT_CHUNK] for i in range(0, len(value), TXT_CHUNK)] or [""]
    return " ".join('"' + chunk.replace('"', '\\"') + '"' for chunk in chunks)


class LocalDns:
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[str]] = {}
        self.failing: set[str] = set()
        self.silent: set[str] = set()
        self.questions: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._udp.bind(("127.0.0.1", 0))
        self.port = self._udp.getsockname()[1]
        self._tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._tcp.bind(("127.0.0.1", self.port))
        self._tcp.listen(16)
        self._threads = [
            threading.Thread(target=self._serve_udp, daemon=True, name="dns-udp"),
            threading.Thread(target=self._serve_tcp, daemon=True, name="dns-tcp"),
        ]
        self._stopped = False

    @property
    def address(self) -> str:
        """As ``MAILPASS_DNS_RESOLVER`` takes it."""
        return f"127.0.0.1:{self.port}"

    # -- the zone ------------------------------------------------------------------------------

    def add(self, name: str, kind: str, *values: str) -> None:
        """Add records; TXT values are given as plain text (``txt`` quotes them)."""
        texts = [txt(value) if kind == "TXT" else value for value in values]
        with self._lock:
            self.records.setdefault((name.lower().rstrip("."), kind), []).extend(texts)

    def replace(self, name: str, kind: str, *values: str) -> None:
        self.remove(name, kind)
        self.add(name, kind, *values)

    def remove(self, name: str, kind: str) -> None:
        with self._lock:
            self.records.pop((name.lower().rstrip("."), kind), None)

    def lookup_txt(self, name: bytes | str, timeout: float = 5) -> bytes | None:
        """dkimpy's ``dnsfunc``: the TXT record at ``name`` as this server serves it, asked
        over the network like any resolver would."""
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        resolver.use_edns(0, 0, 4096)
        qname = name.decode() if isinstance(name, bytes) else name
        try:
            answer = resolver.resolve(qname, "TXT", lifetime=timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        return b"".join(next(iter(answer)).strings)

    # -- answering -----------------------------------------------------------------------------

    def answer(self, wire: bytes) -> bytes | None:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        for question in query.question:
            name = question.name.to_text(omit_final_dot=True).lower()
            kind = dns.rdatatype.to_text(question.rdtype)
            with self._lock:
                self.questions.append((name, kind))
                if name in self.silent:
                    return None
                if name in self.failing:
                    response.set_rcode(dns.rcode.SERVFAIL)
                    continue
                values = list(self.records.get((name, kind), []))
                known = any(held == name for held, _ in self.records)
            if values:
                response.answer.append(
                    dns.rrset.from_text(question.name, 0, dns.rdataclass.IN, kind, *values)
                )
            elif not known:
                response.set_rcode(dns.rcode.NXDOMAIN)
        payload = query.payload if query.edns >= 0 else 512
        return response.to_wire(max_size=65535 if payload > 65535 else max(payload, 512))

    def _serve_udp(self) -> None:
        while not self._stopped:
            try:
                wire, client = self._udp.recvfrom(65535)
            except OSError:
                return
            try:
                reply = self.answer(wire)
            except dns.exception.TooBig:
                reply = None  # the client asks again over TCP
            except Exception:  # a question it cannot parse: no answer, as a real server
                continue
            if reply is not None:
                self._udp.sendto(reply, client)

    def _serve_tcp(self) -> None:
        while not self._stopped:
            try:
                connection, _ = self._tcp.accept()
            except OSError:
                return
            with connection:
                try:
                    size = struct.unpack("!H", _read(connection, 2))[0]
                    reply = self.answer(_read(connection, size))
                except (OSError, ValueError, struct.error):
                    continue
                if reply is not None:
                    connection.sendall(struct.pack("!H", len(reply)) + reply)

    # -- running -------------------------------------------------------------------------------

    def start(self) -> Self:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stopped = True
        for sock in (self._udp, self._tcp):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _read(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ValueError("the client went away")
        data += chunk
    return data


@pytest.fixture
def local_dns() -> Iterator[LocalDns]:
    with LocalDns() as server:
        yield server
